"""Distillation split into shards (grounded.distill.shards): merged, exactly the unsharded file."""

import json

import pytest

from akb.cli import main
from akb.lalm.distill import distill
from akb.lalm.distill import distill_batches, distill_shard
from akb.probe.shards import Shard, merge_shards, shard_path
from conftest import DiesAfter, Interrupted

MODEL = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3"}


def requests(n=22):
    """Open prompts and own questions answered by log-likelihood, with descriptions of many lengths
    (so batches are padded differently)."""
    rows = []
    for i in range(n):
        row = {"id": f"c{i:02d}#0", "clip_id": f"c{i:02d}", "audio": f"c{i:02d}.wav",
               "seed_description": "a dog barks " * (1 + i % 5) + f"in scene {i}",
               "prompt": ["Describe the audio.", "What can you hear in this audio clip?"][i % 2]}
        if i % 3 == 0:
            row |= {"prompt": f"Question: what barks in scene {i}?\nAnswer:", "choices": ["a dog", "a cat", "a bird"]}
        rows.append(row)
    return rows


class Recording:
    """A model that records the prompts of every batch it runs."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, prompts, max_new_tokens):
        self.batches.append(("generate", tuple(prompts)))
        return self.model.generate(prompts, max_new_tokens)

    def loglikelihood(self, pairs):
        self.batches.append(("loglik", tuple(pairs)))
        return self.model.loglikelihood(pairs)


def test_sharded_distillation_merges_into_the_unsharded_file(tmp_path, tiny_qwen3):
    reqs = requests()
    reference, recorded = tmp_path / "distill.jsonl", Recording(tiny_qwen3)
    distill(recorded, reqs, reference, batch_size=4, max_new_tokens=6)
    assert len(distill_batches(tiny_qwen3, reqs, 4)) == 6
    parts, shard_batches = [], []
    for k in (1, 2, 3):
        part, model = tmp_path / shard_path("distill.jsonl", 3, k), Recording(tiny_qwen3)
        distill_shard(model, reqs, part, batch_size=4, max_new_tokens=6, shard=Shard(k, 3))
        parts.append(part)
        shard_batches.append(model.batches)
    merged = tmp_path / "merged.jsonl"
    merge_shards(parts[::-1], [r["id"] for r in reqs], merged)
    assert merged.read_bytes() == reference.read_bytes()
    # Why: shard K ran whole batches K, K+3, ... (1-based) of the unsharded run, as the same calls.
    batches = distill_batches(tiny_qwen3, reqs, 4)
    calls, calls_of = iter(recorded.batches), []
    for batch in batches:  # a batch with both kinds of request is one generate and one loglik call
        kinds = {"choices" in reqs[i] for i in batch}
        calls_of.append([next(calls) for _ in kinds])
    for k, part in enumerate(parts):
        assert shard_batches[k] == [c for b in range(k, len(batches), 3) for c in calls_of[b]]
        assert {json.loads(line)["id"] for line in part.read_text().splitlines()} == {
            reqs[i]["id"] for b in batches[k::3] for i in b}
    rows = [json.loads(line) for line in merged.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in reqs]
    assert all(r["response"] in r["choices"] for r in rows if "choices" in r)


def test_cli_shards_and_merge(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    lines = []
    for i in range(9):
        (tmp_path / f"c{i}.wav").write_bytes(b"")  # read_seeds checks the clip exists; distilling never reads it
        lines.append(json.dumps({"id": f"c{i}", "audio": f"c{i}.wav", "seed_description": "rain " * (i + 1)}))
    seeds.write_text("\n".join(lines) + "\n")
    common = ["distill", "--seeds", str(seeds), "--prompts", json.dumps(["Describe the audio.", "What is it?"]),
              "--prompts-per-clip", "2", "--model", json.dumps(MODEL), "--batch-size", "4",
              "--max-new-tokens", "4"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "one.jsonl")]) == 0
    parts = [str(tmp_path / shard_path("d.jsonl", 2, k)) for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        assert main([*common, "--shard", f"{k}/2", "--out", part]) == 0
    assert main([*common, "--merge", *parts, "--out", str(tmp_path / "merged.jsonl")]) == 0
    assert (tmp_path / "merged.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    # A missing shard is an error naming the requests it lacks, and nothing is written.
    assert main([*common, "--merge", parts[0], "--out", str(tmp_path / "bad.jsonl")]) == 2
    assert not (tmp_path / "bad.jsonl").exists()
    with pytest.raises(SystemExit):
        main([*common, "--shard", "1/2", "--merge", parts[0], "--out", str(tmp_path / "x.jsonl")])


def test_interrupted_distillation_with_a_torn_line_resumes_to_identical_rows(tmp_path, tiny_qwen3):
    """The probe's torn-line test, for distillation: a kill during a write leaves half a row."""
    reqs = requests(12)
    reference = tmp_path / "reference.jsonl"
    distill(tiny_qwen3, reqs, reference, batch_size=4, max_new_tokens=6)

    out = tmp_path / "distill.jsonl"
    with pytest.raises(Interrupted):
        distill(DiesAfter(tiny_qwen3, 2), reqs, out, batch_size=4, max_new_tokens=6)
    assert not out.exists()  # nothing that looks complete
    partial = tmp_path / "distill.jsonl.partial"
    done = [json.loads(line) for line in partial.read_text().splitlines()]
    assert 0 < len(done) < len(reqs)
    with partial.open("a") as f:
        f.write('{"id": "c05#0", "respo')  # a torn line, as a kill during a write leaves it

    distill(tiny_qwen3, reqs, out, batch_size=4, max_new_tokens=6)
    assert out.read_text() == reference.read_text()
    assert not partial.exists()
