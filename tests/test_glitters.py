"""All That Glitters Is Not Audio: paper mode from its published numbers (akb.report.glitters), the
comparison of a diagnostics run with them, and the study config/glitters.yaml plans."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from akb.diagnostics.conditions import PROTOCOL_CONDITIONS
from akb.report.glitters import (
    MEAN_ROW, benchmark_text_prior, build_glitters_paper, comparison_from_file, decomposition_table, table1_long,
)
from akb.report.paper import PAPER_DIR

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED_RTP = {"MMAU": 65.1, "MMAR": 60.5, "MMAU-Pro": 72.1}  # the paper's benchmark-level R_TP


def test_benchmark_text_prior_is_the_ratio_of_the_model_averaged_accuracies():
    summary = benchmark_text_prior(table1_long()).set_index("benchmark")
    assert summary["n_models"].tolist() == [8, 8, 8]
    assert summary["rtp"].round(1).to_dict() == PUBLISHED_RTP
    # The mean of the per-model rows is another number, the one the retention file reports for "none".
    retention = pd.read_csv(PAPER_DIR / "glitters_retention_and_decomposition.csv").set_index("benchmark")
    assert summary["rtp_mean_of_models"].round(1).to_dict() == retention["retention_none"].to_dict()
    assert (summary["rtp"].round(1) != summary["rtp_mean_of_models"].round(1)).all()


def test_table1_rows_are_consistent():
    """Each published R_TP is none / full x 100 of its own row (to the printed 0.1)."""
    long = table1_long()
    assert len(long) == 24
    assert ((100 * long["none"] / long["full"] - long["rtp"]).abs() <= 0.1).all()


def test_paper_mode_writes_tables_and_figures(tmp_path):
    tables = build_glitters_paper(tmp_path)
    for stem in ("table1", "text_prior_benchmarks", "retention", "decomposition"):
        for ext in ("csv", "md", "tex"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0
    for stem in ("retention_figure", "decomposition_figure"):
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 1000

    table1 = pd.read_csv(tmp_path / "table1.csv").set_index("model")
    assert len(table1) == 9 and table1.index[-1] == MEAN_ROW
    assert table1.loc[MEAN_ROW, ["MMAU R_TP", "MMAR R_TP", "MMAU-Pro R_TP"]].tolist() == list(PUBLISHED_RTP.values())
    qwen2_audio = table1.loc["Qwen2-Audio-7B", ["MMAU full", "MMAU none", "MMAU TB", "MMAU R_TP"]]
    assert qwen2_audio.tolist() == [63.9, 38.3, 38.5, 59.9]
    assert "Mean (R_TP: ratio of means) |        68.6 |" in (tmp_path / "table1.md").read_text()

    retention = tables["retention"]
    assert retention.loc["MMAR", ["none", 1, 2, 3, 4, 5]].tolist() == [60.3, 100.0, 89.6, 85.0, 83.5, 81.5]
    # The decomposition's classes cover every item (to the published rounding).
    decomposition = decomposition_table()
    assert ((decomposition[["TS", "FS", "XS", "AH", "UN"]].sum(axis=1) - 100).abs() <= 0.15).all()
    assert (decomposition["AN"] - decomposition["FS"] - decomposition["XS"]).abs().max() < 0.05


def metrics_row(model, benchmark, full, none, backbone, domain="all"):
    return {"model": model, "benchmark": benchmark, "domain": domain, "acc_full": full, "acc_none": none,
            "acc_backbone": backbone, "text_prior": none / full}


def test_comparison_sets_matching_models_beside_the_paper(tmp_path):
    metrics = pd.DataFrame([
        metrics_row("Qwen2-Audio-7B", "MMAU", 60.0, 30.0, 33.0),
        metrics_row("Qwen2-Audio-7B", "MMAU", 10.0, 10.0, 10.0, domain="sound"),  # a domain row: not compared
        metrics_row("Qwen2-Audio-7B", "Synthetic", 50.0, 40.0, 20.0),  # not one of the paper's benchmarks
        metrics_row("My-Audio-LLM", "MMAU", 70.0, 20.0, 20.0),  # not one of the paper's models
    ])
    metrics.to_csv(tmp_path / "diagnostics_metrics.csv", index=False)
    table = comparison_from_file(tmp_path / "diagnostics_metrics.csv", tmp_path / "glitters_comparison")
    assert set(table["model"]) == {"Qwen2-Audio-7B"}
    got = table.set_index("metric")
    assert got.loc["MMAU full", ["ours", "paper", "difference"]].round(2).tolist() == [60.0, 63.9, -3.9]
    assert got.loc["MMAU R_TP", "ours"] == 50.0  # the run's ratio in % like the paper's
    assert got.loc["MMAU TB", "paper"] == 38.5
    for ext in ("csv", "md", "tex", "png", "pdf"):
        assert (tmp_path / f"glitters_comparison.{ext}").is_file()


def test_comparison_without_a_matching_model_is_empty_and_says_why(tmp_path):
    pd.DataFrame([metrics_row("My-Audio-LLM", "MMAU", 70.0, 20.0, 20.0)]).to_csv(tmp_path / "m.csv", index=False)
    table = comparison_from_file(tmp_path / "m.csv", tmp_path / "cmp")
    assert table.empty
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 0
    note = (tmp_path / "cmp.md").read_text()
    assert "No diagnosed audio LLM" in note and "My-Audio-LLM" in note and "Qwen3-Omni (Thinking)" in note


def test_comparison_refuses_a_file_that_is_not_a_metrics_table(tmp_path):
    (tmp_path / "x.csv").write_text("model,benchmark\na,b\n")
    with pytest.raises(ValueError, match=r"x\.csv.*acc_full"):
        comparison_from_file(tmp_path / "x.csv", tmp_path / "cmp")


def job_blocks(config: Path, workdir: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n", "-p", "--configfile",
         str(config), "--directory", str(workdir)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode:
        pytest.fail((result.stdout + result.stderr)[-3000:])
    return (result.stdout + result.stderr).split("\n\n")


def jobs_of(blocks, rule):
    return [b for b in blocks if re.search(rf"^rule {rule}:$", b, flags=re.M)]


def test_the_glitters_config_plans_every_condition_of_every_audio_llm(tmp_path):
    config = yaml.safe_load((ROOT / "config/glitters.yaml").read_text())
    llms = {a["name"]: a for a in config["audio_llms"]}
    benchmarks = [b["name"] for b in config["audio_benchmarks"]]
    assert benchmarks == ["mmau", "mmar", "mmau-pro"] and len(PROTOCOL_CONDITIONS) == 17  # 16 conditions + TB
    blocks = job_blocks(ROOT / "config/glitters.yaml", tmp_path)

    evaluate = jobs_of(blocks, "evaluate_audio_llm")
    assert len(evaluate) == len(llms) * 3 * 17 == 7 * 3 * 17  # DeSTA-2.5 is left out (unreadable)
    assert len(jobs_of(blocks, "judge_audio_llm")) == len(evaluate)  # every run judged
    for rule in ("diagnostics_tables", "glitters_comparison", "paper_figures"):
        assert len(jobs_of(blocks, rule)) == 1
    commands = {re.search(r"--out (\S+)", b).group(1): b for b in evaluate}
    assert set(commands) == {f"results/diagnostics/{a}/{b}/{c}.jsonl"
                             for a in llms for b in benchmarks for c in PROTOCOL_CONDITIONS}

    tb = commands["results/diagnostics/qwen2-audio-7b/mmau/backbone.jsonl"]
    assert "--condition backbone" in tb and '"source": "Qwen/Qwen-7B-Chat"' in tb and "--prompt-style glitters" in tb
    assert "--text-backbone" not in commands["results/diagnostics/qwen2-audio-7b/mmau/fragment-3-1.jsonl"]
    # The paper's budgets: 128 new tokens on MMAU, 512 on MMAR and MMAU-Pro, 4,096 for the thinking model.
    assert "--max-new-tokens 128 " in commands["results/diagnostics/voxtral-mini-3b/mmau/full.jsonl"]
    assert "--max-new-tokens 512 " in commands["results/diagnostics/voxtral-mini-3b/mmau-pro/none.jsonl"]
    assert "--max-new-tokens 4096 " in commands["results/diagnostics/qwen3-omni-thinking/mmau/full.jsonl"]
    assert "gpu=1" in commands["results/diagnostics/qwen3-omni-instruct/mmar/full.jsonl"]
    judge = jobs_of(blocks, "judge_audio_llm")[0]
    assert "gpu=0" in judge and '"source": "claude-haiku-4-5"' in judge and "ANTHROPIC_API_KEY" in judge
