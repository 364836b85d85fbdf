"""Sharding: shards run as separate jobs merge into exactly (byte for byte) the unsharded file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from akb.cli import main
from akb.data.bank import load_bank
from akb.data.items import MCQItem
from akb.probe.run import probe
from akb.probe.shards import Shard, merge_shards, parse_shard, probe_batches, probe_shard, shard_path, shard_paths

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_llama():
    from akb.models import ModelSpec, load_model

    return load_model(ModelSpec.from_config({"name": "tiny-llama", "backend": "tiny", "source": "llama"}))


@pytest.fixture(scope="module")
def bank_items():
    """Real bank questions: lengths vary, so padding differs from batch to batch."""
    return load_bank("builtin")[:60]


class Recording:
    """A model that records every batch it is asked to run (the prompts, in order)."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def loglikelihood(self, requests):
        self.batches.append(tuple(requests))
        return self.model.loglikelihood(requests)

    def generate(self, prompts, max_new_tokens):
        self.batches.append(tuple(prompts))
        return self.model.generate(prompts, max_new_tokens)


def run_sharded(model, items, tmp_path, n, mode, batch_size, descriptions=None):
    """The unsharded run and n shard runs merged; returns (reference, merged, reference batches,
    each shard's batches)."""
    ref_model = Recording(model)
    reference = tmp_path / "reference.jsonl"
    probe(ref_model, items, reference, mode, batch_size, 4, descriptions=descriptions)
    parts, shard_batches = [], []
    for k in range(1, n + 1):
        shard_model = Recording(model)
        part = tmp_path / shard_path("akb.jsonl", n, k)
        probe_shard(shard_model, items, part, mode, batch_size, 4, descriptions=descriptions, shard=Shard(k, n))
        parts.append(part)
        shard_batches.append(shard_model.batches)
    merged = tmp_path / "merged.jsonl"
    merge_shards(reversed(parts), [item.id for item in items], merged)  # part order does not matter
    return reference, merged, ref_model.batches, shard_batches


@pytest.mark.parametrize("mode", ["loglik", "generate"])
@pytest.mark.parametrize("model_name", ["tiny_qwen3", "tiny_llama"])
def test_sharded_runs_merge_into_the_unsharded_file_byte_for_byte(request, tmp_path, bank_items, mode, model_name):
    model = request.getfixturevalue(model_name)
    reference, merged, batches, shard_batches = run_sharded(model, bank_items, tmp_path, 3, mode, batch_size=12)
    assert merged.read_bytes() == reference.read_bytes()
    # Why it holds: each shard runs whole batches of the unsharded run, round robin (rows of one
    # item differ in the last bits between batchings, in loglik mode).
    assert len(batches) >= 5
    assert shard_batches == [batches[k::3] for k in range(3)]
    assert not list(tmp_path.glob("**/*.partial"))


def mixed_items(n=23):
    """Audio-benchmark-like items (MMAR has 2-8 options): one with 5 options, the others 2 or 3, so
    only one shard has the item that sets the unsharded run's items per batch."""
    items = []
    for i in range(n):
        choices = tuple(f"choice {j} of item {i}" + " long" * (j * i % 3) for j in range(5 if i == 0 else 2 + i % 2))
        items.append(MCQItem(id=f"x{i:02d}", question="What is heard " + "in this clip " * (i % 5) + "?",
                             choices=choices, answer=choices[i % len(choices)], category="c", subcategory="s"))
    return items


def test_shards_keep_batches_when_items_have_different_option_counts(tmp_path, tiny_qwen3):
    """In loglik mode a batch holds batch_size // (most options) items; a shard whose items have
    fewer options still gets the unsharded run's batches (the cascade, with captions)."""
    items = mixed_items()
    captions = {it.id: f"a caption {'with detail ' * (int(it.id[1:]) % 3)}for {it.id}" for it in items}
    reference, merged, batches, shard_batches = run_sharded(tiny_qwen3, items, tmp_path, 3, "loglik", 12,
                                                            descriptions=captions)
    assert merged.read_bytes() == reference.read_bytes()
    assert shard_batches == [batches[k::3] for k in range(3)]
    assert all(captions[r["id"]] in r["prompt"] for r in map(json.loads, merged.read_text().splitlines()))


def test_more_shards_than_batches_leaves_some_empty(tmp_path, tiny_qwen3, bank_items):
    items = bank_items[:20]
    batches, per_batch = probe_batches(tiny_qwen3, items, "generate", 16)
    assert (len(batches), per_batch) == (2, 16)
    reference, merged, _, shard_batches = run_sharded(tiny_qwen3, items, tmp_path, 4, "generate", 16)
    assert merged.read_bytes() == reference.read_bytes()
    assert [len(b) for b in shard_batches] == [1, 1, 0, 0]
    assert (tmp_path / "shards/akb.4-of-4.jsonl").read_text() == ""


def test_an_interrupted_shard_resumes_to_the_same_rows(tmp_path, tiny_qwen3, bank_items):
    out = tmp_path / "part.jsonl"
    probe_shard(tiny_qwen3, bank_items, out, "loglik", 12, 4, shard=Shard(2, 3))
    reference = out.read_text()
    lines = reference.splitlines(keepends=True)
    out.unlink()
    (tmp_path / "part.jsonl.partial").write_text("".join(lines[:5]) + lines[5][:10])
    probe_shard(tiny_qwen3, bank_items, out, "loglik", 12, 4, shard=Shard(2, 3))
    assert out.read_text() == reference


def test_shard_spec_and_paths():
    assert parse_shard("2/3") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"
    for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"]:
        with pytest.raises(Exception, match="K/N"):
            parse_shard(bad)
    assert shard_path("results/probe/{model}/{bank}.jsonl", 1) == "results/probe/{model}/{bank}.jsonl"
    assert shard_path("results/probe/{model}/{bank}.jsonl", 3) == (
        "results/probe/{model}/shards/{bank}.{shard}-of-3.jsonl")
    assert shard_paths("logs/a.v2.log", 2) == ["logs/shards/a.v2.1-of-2.log", "logs/shards/a.v2.2-of-2.log"]


# ---- merging: every item exactly once, or a clear error; the output only when complete ----


def write_rows(path, ids):
    path.write_text("".join(json.dumps({"id": i, "correct": True}) + "\n" for i in ids))
    return path


def test_merge_writes_rows_in_item_order(tmp_path):
    a, b = write_rows(tmp_path / "a.jsonl", ["q3", "q1"]), write_rows(tmp_path / "b.jsonl", ["q2"])
    merge_shards([a, b], ["q1", "q2", "q3"], tmp_path / "out.jsonl")
    assert [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ["q1", "q2", "q3"]


@pytest.mark.parametrize("parts, message", [
    ([["q1"], ["q3"]], r"1 item\(s\) in no shard: q2"),
    ([["q1", "q2"], ["q2", "q3"]], r"1 item\(s\) with more than one row: q2 \(.*a.jsonl:2, .*b.jsonl:1\)"),
    ([["q1", "q2", "q3", "q9"], []], r"1 row\(s\) for items not in the item list: q9"),
    ([["q1"], ["q1", "q2"]], r"in no shard: q3\n.*more than one row: q1"),
])  # fmt: skip
def test_merge_names_missing_duplicate_and_unknown_items(tmp_path, parts, message):
    paths = [write_rows(tmp_path / name, ids) for name, ids in zip(["a.jsonl", "b.jsonl"], parts)]
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=message):
        merge_shards(paths, ["q1", "q2", "q3"], out)
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))  # nothing published


def test_merge_names_a_malformed_line(tmp_path):
    part = write_rows(tmp_path / "a.jsonl", ["q1"])
    with part.open("a") as f:
        f.write('{"id": "q2", "corr\n')
    with pytest.raises(ValueError, match=r"a.jsonl, line 2: not valid JSON"):
        merge_shards([part], ["q1", "q2"], tmp_path / "out.jsonl")


# ---- the commands ----


def test_probe_and_merge_commands(tmp_path, bank_file, items, caplog):
    model = json.dumps({"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3"})
    common = ["probe", "--bank", str(bank_file), "--model", model, "--mode", "generate", "--batch-size", "3",
              "--max-new-tokens", "4"]
    assert main([*common, "--out", str(tmp_path / "full.jsonl")]) == 0
    parts = [str(tmp_path / f"part{k}.jsonl") for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        assert main([*common, "--shard", f"{k}/2", "--out", part]) == 0
    assert main(["merge-shards", "--bank", str(bank_file), "--parts", *parts, "--out", str(tmp_path / "m.jsonl")]) == 0
    assert (tmp_path / "m.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()

    incomplete = ["merge-shards", "--bank", str(bank_file), "--parts", parts[0], "--out", str(tmp_path / "x.jsonl")]
    assert main(incomplete) == 2
    assert "item(s) in no shard: " in caplog.text and not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SystemExit):
        main([*common, "--shard", "3/2", "--out", str(tmp_path / "bad.jsonl")])


# ---- the workflow: scatter/gather jobs, the same final files as without sharding ----


def run_snakemake(workdir, config, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config),
               "--directory", str(workdir), *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def mini_study(tmp_path_factory):
    """A config with a small bank and a small MMAR-style benchmark (2-4 options per question)
    captioned from a file, so the probe and the cascade both run in seconds."""
    import numpy as np
    import soundfile as sf

    root = tmp_path_factory.mktemp("mini")
    records = []
    for i in range(24):
        clip = root / f"audio/c{i}.wav"
        clip.parent.mkdir(exist_ok=True)
        sf.write(clip, 0.3 * np.sin(np.arange(4800) * (0.05 + 0.01 * i)), 16000)
        choices = ["a man", "a woman", "a child", "a robot"][: 2 + i % 3]
        records.append({"id": f"c{i}", "audio_path": f"./audio/c{i}.wav",
                        "question": "Who speaks" + " now" * (i % 4) + "?", "choices": choices, "answer": choices[i % len(choices)], "modality": "speech"})
    (root / "mini.json").write_text(json.dumps(records))
    (root / "captions.jsonl").write_text("".join(
        json.dumps({"id": f"c{i}", "caption": "someone talks" + " softly" * (i % 3)}) + "\n" for i in range(24)))

    def config(shards):
        path = root / f"config-{shards}.yaml"
        path.write_text(json.dumps({
            "bank": {"source": "builtin", "limit": 72},
            "probe": {"mode": "loglik", "batch_size": 12, "bootstrap_resamples": 100, "shards": shards},
            "cascade": {"shards": shards},
            "audio_benchmarks": [{"name": "mini", "source": str(root / "mini.json"), "kind": "mmar"}],
            "captioners": [{"name": "given", "backend": "file", "path": str(root / "captions.jsonl")}],
            "models": [{**MODEL, "resources": {"threads": 1}}],
        }))
        return path

    config.root = root
    return config


MODEL = {"name": "tiny-llama", "backend": "tiny", "source": "llama"}
TARGETS = ["results/probe/tiny-llama/akb.jsonl", "results/cascade/given/tiny-llama/mini.jsonl"]


def test_one_shard_plans_the_jobs_of_an_unsharded_workflow(tmp_path, mini_study):
    plan = run_snakemake(tmp_path, mini_study(1), "-n", "-p", *TARGETS)
    assert "merge_" not in plan and "--shard" not in plan and "/shards/" not in plan
    assert "output: results/probe/tiny-llama/akb.jsonl\n" in plan


def test_sharded_workflow_writes_the_unsharded_files(tmp_path, mini_study):
    """Three shards per model: the final files are those of the unsharded jobs' commands (which the
    test above shows are the unsharded workflow's), run here in-process with the same arguments."""
    import torch

    run_snakemake(tmp_path, mini_study(3), "--cores", "2", *TARGETS)
    model, threads = json.dumps(MODEL), torch.get_num_threads()
    common = ["--model", model, "--mode", "loglik", "--batch-size", "12", "--max-new-tokens", "32", "--threads", "1"]
    try:
        assert main(["probe", "--bank", str(tmp_path / "resources/banks/akb.jsonl"), *common,
                     "--out", str(tmp_path / "probe.jsonl")]) == 0
        assert main(["cascade", "--benchmark", str(mini_study.root / "mini.json"), "--kind", "mmar", "--captions",
                     str(tmp_path / "results/captions/given/mini.jsonl"), *common,
                     "--out", str(tmp_path / "cascade.jsonl")]) == 0
    finally:
        torch.set_num_threads(threads)
    for target, reference in zip(TARGETS, ["probe.jsonl", "cascade.jsonl"]):
        assert (tmp_path / target).read_bytes() == (tmp_path / reference).read_bytes(), target
    assert sorted(p.name for p in (tmp_path / "results/probe/tiny-llama/shards").iterdir()) == [
        "akb.1-of-3.jsonl", "akb.2-of-3.jsonl", "akb.3-of-3.jsonl"]
    assert len(list((tmp_path / "results/cascade/given/tiny-llama/shards").glob("mini.*-of-3.jsonl"))) == 3
    assert (tmp_path / "logs/probe/tiny-llama/shards/akb.2-of-3.log").is_file()
