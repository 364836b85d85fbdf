"""The Snakemake workflow itself: lint, the paper plan, and an end-to-end run on tiny models."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from akb.io import read_jsonl, write_json

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def snakemake(*args, cwd=ROOT, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_lint_is_clean():
    result = snakemake("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_paper_config_plans_the_full_probing_study(tmp_path):
    # As the README runs it: beside the demo's config/config.yaml, which must not merge into the study.
    shutil.copytree(ROOT / "config", tmp_path / "config")
    result = snakemake("-n", "--configfile", str(ROOT / "config/paper.yaml"), "--directory", str(tmp_path))
    out = result.stdout + result.stderr
    assert "smollm2" not in out and "tiny-" not in out
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # All 17 models: 12 open ones on GPUs, 5 behind APIs.
    assert counts["probe_model"] == 17 and counts["score_probe"] == 17 and counts["probe_table"] == 1
    assert "output: results/probe/gpt-5/akb2000.jsonl" in out
    assert not (tmp_path / "resources").exists()  # planning downloads and writes nothing
    # The published benchmarks are fetched by the workflow; Gemini captions are made through the API.
    assert counts["fetch_audio_benchmark_mmau"] == counts["fetch_audio_benchmark_mmar"] == 1
    assert counts["caption_benchmark"] == 3 * 2
    gemini = [j for j in out.split("\n\n") if "output: results/captions/gemini/mmau.jsonl" in j]
    assert len(gemini) == 1 and '"backend": "api"' in gemini[0] and "gpu=0" in gemini[0]
    # The paper's pairings: 17 LLMs on Gemini captions, Gemini-2.5-Pro alone on Whisper's and the Omni's.
    assert counts["cascade_model"] == counts["score_cascade"] == (17 + 2) * 2
    for captioner in ("whisper-large-v3", "qwen3-omni-captioner"):
        cascade = {line.split("/")[3] for line in out.splitlines() if f"output: results/cascade/{captioner}/" in line}
        assert cascade == {"gemini-2.5-pro"}, captioner


def test_slurm_profile_plans_jobs_with_model_resources(tmp_path):
    result = snakemake("-n", "--configfile", str(ROOT / "config/paper.yaml"), "--directory", str(tmp_path),
                       "--workflow-profile", str(ROOT / "profiles/slurm"))
    jobs = (result.stdout + result.stderr).split("\n\n")
    (qwen14,) = [j for j in jobs if "output: results/probe/qwen3-14b/akb2000.jsonl" in j]
    assert "mem_mb=64000" in qwen14 and "runtime=240" in qwen14 and "gpu=1" in qwen14
    assert "slurm_partition=gpu" in qwen14


def test_the_bank_file_is_tracked_so_edits_rerun_the_study(tmp_path):
    bank = tmp_path / "mine.jsonl"
    bank.write_text('{"id": "a", "question": "Q?", "options": ["x", "y"], "answer": "A"}\n')
    for source, expected in [("builtin", ROOT / "workflow/data/banks/akb-v2.jsonl"),
                             ("builtin-v1", ROOT / "workflow/data/banks/akb-v1.jsonl"), (str(bank), bank)]:
        config = tmp_path / "config.yaml"
        config.write_text(f"bank: {{source: '{source}'}}\nmodels:\n  - {{name: m, backend: tiny, source: llama}}\n")
        plan = snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path)).stdout
        (job,) = [j for j in plan.split("\n\n") if "rule prepare_bank:" in j]
        assert f"input: {expected}" in job


def test_invalid_config_stops_with_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {name: m, backend: tiny, source: llama}\nprobe: {batch_size: 0}\n")
    result = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "config.probe.batch_size: 0 is less than the minimum of 1" in result.stdout + result.stderr


def test_missing_bank_file_fails_clearly_and_publishes_nothing(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("bank: {source: absent.jsonl}\nmodels:\n  - {name: m, backend: tiny, source: llama}\n")
    result = snakemake("--cores", "1", "--configfile", str(config), "--directory", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "absent.jsonl: bank file not found" in (tmp_path / "logs/bank/akb.log").read_text()
    assert not (tmp_path / "resources/banks/akb.jsonl").exists()


def e2e_config(workdir: Path, whisper_dir: Path) -> Path:
    """tests/data/e2e_config.yaml with the tiny Whisper's directory as the audio encoder."""
    import yaml

    config = yaml.safe_load((ROOT / "tests/data/e2e_config.yaml").read_text())
    config["grounded"]["encoder"]["source"] = str(whisper_dir)
    path = workdir / "e2e_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_whisper_dir):
    workdir = tmp_path_factory.mktemp("e2e")
    snakemake("--cores", "2", "--configfile", str(e2e_config(workdir, tiny_whisper_dir)), "--directory", str(workdir))
    return workdir


def test_end_to_end_writes_predictions_scores_and_table(demo_run):
    from akb.data.bank import load_bank

    n_items = len(load_bank("builtin"))
    for model in ["tiny-qwen3", "tiny-llama", "tiny-gemma"]:
        rows = read_jsonl(demo_run / f"results/probe/{model}/akb.jsonl")
        assert len(rows) == n_items and len({r["id"] for r in rows}) == n_items
        scores = json.loads((demo_run / f"results/probe/{model}/akb_scores.json").read_text())
        assert scores["n"] == n_items and scores["model"] == model
        assert scores["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in rows) / n_items)
        assert len(scores["by_category"]) == 6 and len(scores["by_subcategory"]) == 48
        assert scores["ci"][0] <= scores["accuracy"] <= scores["ci"][1]
    assert {r["mode"] for r in read_jsonl(demo_run / "results/probe/tiny-llama/akb.jsonl")} == {"loglik"}
    table = (demo_run / "results/tables/akb_probe.csv").read_text().splitlines()
    assert table[0].startswith("model,family,group,mode,avg,ci_low,ci_high,avg_akb,akb_ci_low,akb_ci_high,n,"
                               "unparseable,Sound,")
    assert len(table) == 4
    assert "| Model" in (demo_run / "results/tables/akb_probe.md").read_text()
    assert "AKB-weighted" in (demo_run / "results/tables/akb_probe.md").read_text()
    subcategories = (demo_run / "results/tables/akb_probe_subcategories.csv").read_text().splitlines()
    assert subcategories[0].endswith(",models differ") and len(subcategories) == 1 + 48


def test_end_to_end_metrics_figures_and_comparison_with_the_paper(demo_run):
    import pandas as pd

    metrics = pd.read_csv(demo_run / "results/tables/metrics.csv")
    assert list(metrics["model"]) == ["Qwen3-8B", "tiny-llama", "tiny-gemma"]
    assert "AKB-2000 (Text)" in metrics and "AKB-2000 Phonetic (Text)" in metrics
    long = pd.read_csv(demo_run / "results/tables/metrics_long.csv")
    assert set(long.columns) >= {"model", "metric", "value", "n", "ci_low", "ci_high"}
    category_pairs = pd.read_csv(demo_run / "results/figures/category_correlations.csv")
    assert len(category_pairs) == 15 and set(category_pairs.n) == {3}
    for stem in ["figures/category_correlations_heatmap", "figures/paper_comparison"]:
        assert (demo_run / f"results/{stem}.png").stat().st_size > 0
        assert (demo_run / f"results/{stem}.pdf").stat().st_size > 0
    (row,) = pd.read_csv(demo_run / "results/tables/paper_comparison.csv").to_dict("records")
    ours = metrics.set_index("model").loc["Qwen3-8B", "AKB-2000 (Text)"]
    assert row["model"] == "Qwen3-8B" and row["paper"] == 78.95
    assert row["ours"] == pytest.approx(ours, abs=0.01)
    assert "\\toprule" in (demo_run / "results/tables/akb_probe.tex").read_text()


def test_end_to_end_cascade_on_the_synthetic_suite(demo_run):
    import pandas as pd

    validation = json.loads((demo_run / "results/benchmarks/synthetic/validation.json").read_text())
    assert validation["items"] == 60 and validation["domains"] == ["music", "sound", "speech"]
    captions = read_jsonl(demo_run / "results/captions/dsp/synthetic.jsonl")
    assert len(captions) == 60 and all(c["caption"] for c in captions)
    for model in ["tiny-qwen3", "tiny-llama", "tiny-gemma"]:
        rows = read_jsonl(demo_run / f"results/cascade/dsp/{model}/synthetic.jsonl")
        assert len(rows) == 60
        caption = {c["id"]: c["caption"] for c in captions}
        assert all(caption[r["id"]] in r["prompt"] for r in rows)  # the LLM read the caption
        scores = json.loads((demo_run / f"results/cascade/dsp/{model}/synthetic_scores.json").read_text())
        assert scores["n"] == 60 and set(scores["by_domain"]) == {"sound", "music", "speech"}
        official = json.loads((demo_run / f"results/cascade/dsp/{model}/synthetic_official.json").read_text())
        assert len(official) == 60 and all("model_output" in r for r in official)
    table = pd.read_csv(demo_run / "results/tables/cascade.csv")
    assert list(table.columns[:4]) == ["captioner", "llm", "group", "Synthetic_avg"] and len(table) == 3
    check_cascade_numbers(demo_run, {"tiny-qwen3": "Qwen3-8B", "tiny-llama": "tiny-llama", "tiny-gemma": "tiny-gemma"})
    headline = pd.read_csv(demo_run / "results/figures/correlations.csv")
    text_pair = headline[headline.pair == "Synthetic (Text) ~ AKB-2000 (Text)"]
    assert list(text_pair.n) == [3]  # the three models that ran both
    assert (demo_run / "results/figures/correlations_heatmap.png").is_file()


def test_end_to_end_audio_grounded_stage(demo_run):
    import pandas as pd

    for model in ["tiny-qwen3", "tiny-llama"]:
        distilled = read_jsonl(demo_run / f"results/grounded/{model}/distill.jsonl")
        assert len(distilled) == 2 * 24  # one sampled prompt and the clip's own question per clip
        info = json.loads((demo_run / f"results/grounded/{model}/checkpoint/train_info.json").read_text())
        assert info["steps"] == 3 and info["backbone"] == model
        rows = read_jsonl(demo_run / f"results/grounded/{model}/synthetic.jsonl")
        assert len(rows) == 60 and all("Question:" in r["prompt"] or "(A)" in r["prompt"] for r in rows)
        scores = json.loads((demo_run / f"results/grounded/{model}/synthetic_scores.json").read_text())
        assert scores["n"] == 60 and scores["captioner"] == "audio"
    assert {r["mode"] for r in read_jsonl(demo_run / "results/grounded/tiny-llama/synthetic.jsonl")} == {"loglik"}
    table = pd.read_csv(demo_run / "results/tables/grounded.csv")
    assert len(table) == 4 and set(table.captioner) == {"audio", "no audio"} and "Synthetic_avg" in table
    metrics = pd.read_csv(demo_run / "results/tables/metrics.csv")
    assert "Synthetic (Audio)" in metrics and "Synthetic (Text)" in metrics
    # Figure 2 now correlates probing, cascade and audio-grounded accuracy; Figure 3 has its points.
    headline = pd.read_csv(demo_run / "results/figures/correlations.csv")
    assert "Synthetic (Audio) ~ AKB-2000 (Text)" in set(headline.pair)
    assert (demo_run / "results/figures/scatter_Synthetic_dsp.png").stat().st_size > 0


def test_end_to_end_diagnostics(demo_run):
    import pandas as pd

    from akb.diagnostics.conditions import FRAGMENT_CONDITIONS

    for condition in ["none", "backbone", "silence", *FRAGMENT_CONDITIONS]:
        rows = read_jsonl(demo_run / f"results/diagnostics/tiny-llama/synthetic/{condition}.jsonl")
        assert len(rows) == 60
    none_prompts = [r["prompt"] for r in read_jsonl(demo_run / "results/diagnostics/tiny-llama/synthetic/none.jsonl")]
    assert not any("<|audio|>" in p for p in none_prompts)
    metrics = pd.read_csv(demo_run / "results/tables/diagnostics_metrics.csv")
    assert set(metrics.domain) == {"all", "sound", "music", "speech"}
    assert {"text_prior", "retention_2", "retention_5", "cross_segment_share"} <= set(metrics.columns)
    items = pd.read_csv(demo_run / "results/tables/diagnostics_items.csv")
    assert len(items) == 60
    reliance = pd.read_csv(demo_run / "results/tables/diagnostics_reliance.csv")
    assert len(reliance) == 1 and reliance.loc[0, "benchmark"] == "Synthetic"
    accuracy = pd.read_csv(demo_run / "results/tables/diagnostics_accuracy.csv")
    assert "silence" in set(accuracy.condition)
    assert any((demo_run / "results/figures/diagnostics").glob("retention_*.png"))
    check_diagnostics_numbers(demo_run, "tiny-llama", ["none", "backbone", "silence", *FRAGMENT_CONDITIONS])


def _percent(flags) -> float:
    return 100 * sum(flags) / len(flags)


def check_cascade_numbers(run, labels: dict[str, str]) -> None:
    """Accuracy recomputed from each model's official-format records (the official rule, per item)
    equals its scores file and its row of the cascade table (written with 2 decimals), overall and
    per domain."""
    import pandas as pd

    from akb.scoring.answers import string_match

    table = pd.read_csv(run / "results/tables/cascade.csv").set_index("llm")
    for model, label in labels.items():
        official = json.loads((run / f"results/cascade/dsp/{model}/synthetic_official.json").read_text())
        correct = [string_match(r["answer"], r["model_output"], r["choices"]) for r in official]
        scores = json.loads((run / f"results/cascade/dsp/{model}/synthetic_scores.json").read_text())
        assert scores["accuracy"] == pytest.approx(_percent(correct))
        assert table.loc[label, "Synthetic_avg"] == pytest.approx(_percent(correct), abs=0.005)
        for domain in ("sound", "music", "speech"):
            mine = _percent([c for c, r in zip(correct, official) if r["task"] == domain])
            assert scores["by_domain"][domain]["accuracy"] == pytest.approx(mine)
            assert table.loc[label, f"Synthetic_{domain}"] == pytest.approx(mine, abs=0.005)


def check_diagnostics_numbers(run, model: str, conditions: list[str]) -> None:
    """Each condition's accuracy, graded item by item from its predictions file (the audio-grounded
    run's for `full`), equals the accuracy table's, and the text prior Acc(none) / Acc(full) the
    metrics table's (written with 4 significant digits)."""
    import pandas as pd

    from akb.scoring.audio import grade_predictions
    from akb.data.audio_bench import load_audio_benchmark

    items, _ = load_audio_benchmark(run / "resources/synthetic/test.json")
    files = {"full": run / f"results/grounded/{model}/synthetic.jsonl"}
    files |= {c: run / f"results/diagnostics/{model}/synthetic/{c}.jsonl" for c in conditions}
    graded = {c: grade_predictions(items, read_jsonl(path)) for c, path in files.items()}
    accuracy = pd.read_csv(run / "results/tables/diagnostics_accuracy.csv")
    run_rows = (accuracy.model == model) & (accuracy.benchmark == "Synthetic")
    accuracy = accuracy[run_rows].set_index(["domain", "condition"])
    metrics = pd.read_csv(run / "results/tables/diagnostics_metrics.csv")
    metrics = metrics[(metrics.model == model) & (metrics.benchmark == "Synthetic")].set_index("domain")
    for domain in ("all", "sound", "music", "speech"):
        acc = {c: _percent([g["correct"] for g in rows if domain in ("all", g["domain"])])
               for c, rows in graded.items()}
        for condition, value in acc.items():
            assert accuracy.loc[(domain, condition), "accuracy"] == pytest.approx(value, rel=5e-4), (domain, condition)
        prior = acc["none"] / acc["full"] if acc["full"] else float("nan")
        assert metrics.loc[domain, "acc_full"] == pytest.approx(acc["full"], rel=5e-4)
        assert metrics.loc[domain, "text_prior"] == pytest.approx(prior, rel=5e-4, nan_ok=True), domain


def test_report_holds_tables_and_figures(demo_run):
    config = demo_run / "e2e_config.yaml"
    snakemake("--configfile", str(config), "--directory", str(demo_run), "--report", "report.html")
    html = (demo_run / "report.html").read_text()
    assert "in the style of the paper's Table 1" in html and "Figure 2 of the paper rebuilt" in html


def test_paper_figures_need_no_models(tmp_path):
    import pandas as pd

    from akb.scoring.metrics import correlations
    from akb.report.paper import METRICS, paper_metrics

    snakemake("paper_figures", "--cores", "1", "--configfile", str(ROOT / "config/config.yaml"),
              "--directory", str(tmp_path))
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results/probe").exists()
    written = pd.read_csv(tmp_path / "results/paper/correlations.csv")
    expected = correlations(paper_metrics(), METRICS)
    assert list(written.pair) == list(expected.metric_a + " ~ " + expected.metric_b)
    assert written.r.to_numpy() == pytest.approx(expected.r.to_numpy(), abs=1e-4)
    assert list(written.n) == [17, 17, 17, 8, 8, 8, 8, 8, 8, 8]
    for name in ["correlations_heatmap", "scatter_mmau", "scatter_mmar"]:
        assert (tmp_path / f"results/paper/{name}.pdf").is_file()


def test_rerun_after_interruption_resumes(demo_run, tmp_path):
    """A probing job killed midway leaves a partial file; the next run completes it, identically."""
    workdir = tmp_path / "w"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns(".snakemake"))
    final = workdir / "results/probe/tiny-qwen3/akb.jsonl"
    reference = final.read_text()
    lines = reference.splitlines(keepends=True)
    (final.parent / "akb.jsonl.partial").write_text("".join(lines[:100]) + lines[100][:20])
    write_json(final.parent / "akb.jsonl.partial.fingerprint.json", _probe_fingerprint(workdir, "tiny-qwen3"))
    # As left by a kill during probing: nothing downstream of the probe exists yet.
    for path in [final, final.parent / "akb_scores.json", *(workdir / "results/tables").glob("*")]:
        path.unlink()
    config = workdir / "e2e_config.yaml"
    snakemake("--cores", "2", "--configfile", str(config), "--directory", str(workdir))
    assert final.read_text() == reference
    assert "resuming from" in (workdir / "logs/probe/tiny-qwen3/akb.log").read_text()


def _probe_fingerprint(workdir: Path, model: str) -> dict:
    """The fingerprint the probe job of `model` writes next to its partial file (as the probe rule
    passes the config's settings to `akb probe`), so a hand-made partial file is resumed."""
    from types import SimpleNamespace

    from akb.config import load_config_file, model_entry, probe_settings
    from akb.data.bank import load_bank
    from akb.models import ModelSpec
    from akb.probe.run import probe_fingerprint

    config = load_config_file(workdir / "e2e_config.yaml")
    spec = ModelSpec.from_config(model_entry(config, model))  # its resources are no part of the fingerprint
    settings = probe_settings(config, model)
    items = load_bank(str(workdir / f"resources/banks/{config['bank']['name']}.jsonl"))
    return probe_fingerprint(SimpleNamespace(spec=spec), items, settings["mode"], settings["max_new_tokens"],
                             None, None, "lettered")


def _job_counts(out: str) -> dict[str, int]:
    stats = out[out.index("Job stats:"):].split("\n\n")[0]
    return {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()[3:] if len(line.split()) == 2}


@pytest.mark.parametrize("use_transcript", [True, False])
def test_transcripts_are_planned_once_for_every_backbone(tmp_path, use_transcript):
    """Whisper transcripts depend on the audio, not the backbone: one job for the training clips and one
    per (benchmark, condition with audio), read by both backbones' jobs; none when they are off."""
    import yaml

    path = e2e_config(tmp_path, tmp_path / "whisper")
    config = yaml.safe_load(path.read_text())
    config["grounded"]["use_transcript"] = use_transcript
    path.write_text(yaml.safe_dump(config))
    out = snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path)).stdout
    counts = _job_counts(out)
    # 17 conditions of tiny-llama (16 of the protocol + silence), and tiny-qwen3's `none` for Table 3.
    assert counts["train_lalm"] == 2 and counts["evaluate_lalm"] == 2 and counts["diagnose_condition"] == 18
    jobs = out.split("\n\n")
    if not use_transcript:
        assert "transcribe" not in counts and "results/transcripts/" not in out
        return
    # full, the 14 fragments and silence of the one benchmark; not none or backbone, which have no audio.
    assert counts["transcribe_training_clips"] == 1 and counts["transcribe_benchmark"] == 16
    for job in (j for j in jobs if "rule train_lalm:" in j):
        assert "input: results/transcripts/train.jsonl" in job
        assert "--transcripts results/transcripts/train.jsonl" in job
    for job in (j for j in jobs if "rule evaluate_lalm:" in j):
        assert "--transcripts results/transcripts/synthetic/full.jsonl" in job
    (none,) = [j for j in jobs if "output: results/diagnostics/tiny-llama/synthetic/none.jsonl" in j]
    (fragment,) = [j for j in jobs if "output: results/diagnostics/tiny-llama/synthetic/fragment-3-1.jsonl" in j]
    assert "--transcripts" not in none and "--transcripts results/transcripts/synthetic/fragment-3-1.jsonl" in fragment
