"""Captioning resumes after an interruption: a rerun captions only the clips not yet done, and ends
with the same file as an uninterrupted run; an interrupted run publishes nothing final."""

import json

import numpy as np
import pytest
import soundfile as sf

from akb.audio import SAMPLE_RATE
from akb.cascade.caption import caption_items
from akb.captioners import Captioner
from akb.data.audio_bench import load_audio_benchmark
from akb.io import read_jsonl

N_CLIPS = 7
BATCH = 2
SPEAKERS = ["Man", "Woman", "Child", "Robot"]


class CountingCaptioner(Captioner):
    """A deterministic caption of each clip's content; records every clip it is asked about, and
    raises on call number `fail_on` (counting from 1), as a killed or crashing job would."""

    name = "counting"

    def __init__(self, fail_on: int | None = None):
        self.fail_on = fail_on
        self.calls: list[list[str]] = []  # per call, the captions it produced (one per clip)

    def caption(self, audios):
        if self.fail_on is not None and len(self.calls) + 1 == self.fail_on:
            raise RuntimeError("captioner crashed")
        captions = [f"{a.size} samples, peak {np.max(np.abs(a)):.4f}, rms {np.sqrt(np.mean(a**2)):.5f}" for a in audios]
        self.calls.append(captions)
        return captions

    @property
    def captioned(self) -> list[str]:
        return [c for call in self.calls for c in call]


@pytest.fixture
def items(tmp_path):
    """An MMAU-style benchmark: N_CLIPS clips of distinct lengths and levels, the first clip used by
    two items (captioned once), so N_CLIPS + 1 items."""
    records = []
    for i in range(N_CLIPS + 1):
        clip = f"./test-mini-audios/clip-{i % N_CLIPS}.wav"
        records.append({"id": f"mmau-{i}", "audio_id": clip, "question": "Who speaks?", "choices": SPEAKERS,
                        "answer": SPEAKERS[i % 4], "task": ["sound", "music", "speech"][i % 3],
                        "category": "Reasoning", "sub-category": "Speaker"})
    folder = tmp_path / "bench" / "test-mini-audios"
    folder.mkdir(parents=True)
    for i in range(N_CLIPS):
        t = np.arange(int((0.1 + 0.05 * i) * SAMPLE_RATE)) / SAMPLE_RATE
        sf.write(folder / f"clip-{i}.wav", (0.1 + 0.1 * i) * np.sin(2 * np.pi * 220 * (i + 1) * t), SAMPLE_RATE)
    path = tmp_path / "bench" / "mmau.json"
    path.write_text(json.dumps(records))
    return load_audio_benchmark(path)[0]


@pytest.fixture
def reference(tmp_path, items):
    """The captions file of an uninterrupted run, and what the captioner was asked."""
    captioner = CountingCaptioner()
    out = tmp_path / "reference" / "mmau.jsonl"
    caption_items(captioner, items, out, batch_size=BATCH)
    return out, captioner


def test_uninterrupted_run(items, reference):
    out, captioner = reference
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [it.id for it in items]
    assert {r["captioner"] for r in rows} == {"counting"}
    assert rows[N_CLIPS]["caption"] == rows[0]["caption"]  # the shared clip
    assert len(set(captioner.captioned)) == N_CLIPS == len(captioner.captioned)  # each clip once
    assert [len(call) for call in captioner.calls] == [2, 2, 2, 1]
    assert not out.with_name(out.name + ".partial").exists()


def test_interrupted_run_resumes_where_it_stopped(tmp_path, items, reference):
    out = tmp_path / "results" / "captions" / "counting" / "mmau.jsonl"
    partial = out.with_name(out.name + ".partial")

    crashing = CountingCaptioner(fail_on=2)  # the first batch succeeds, the second raises
    with pytest.raises(RuntimeError, match="captioner crashed"):
        caption_items(crashing, items, out, batch_size=BATCH)
    assert not out.exists()  # no final output, only the partial one
    done = read_jsonl(partial)
    first_batch = crashing.calls[0]
    assert len(first_batch) == BATCH
    # The first two clips' items, the shared clip's second item included.
    assert [r["id"] for r in done] == ["mmau-0", f"mmau-{N_CLIPS}", "mmau-1"]

    resumed = CountingCaptioner()
    caption_items(resumed, items, out, batch_size=BATCH)
    assert len(resumed.captioned) == N_CLIPS - BATCH  # only the clips not done before
    assert not set(resumed.captioned) & set(first_batch)  # nothing captioned twice
    assert sorted(first_batch + resumed.captioned) == sorted(reference[1].captioned)
    assert out.read_bytes() == reference[0].read_bytes()  # identical to the uninterrupted run
    assert not partial.exists()


def test_torn_last_line_is_redone(tmp_path, items, reference):
    """A job killed while writing leaves half a line: that item's clip is captioned again."""
    out = tmp_path / "mmau.jsonl"
    with pytest.raises(RuntimeError):
        caption_items(CountingCaptioner(fail_on=3), items, out, batch_size=BATCH)
    partial = out.with_name(out.name + ".partial")
    lines = partial.read_text().splitlines(keepends=True)
    assert len(lines) == 5  # clips 0-3: items 0, N_CLIPS, 1, 2, 3
    partial.write_text("".join(lines[:-1]) + lines[-1][:15])  # mmau-3's row torn

    resumed = CountingCaptioner()
    caption_items(resumed, items, out, batch_size=BATCH)
    assert len(resumed.captioned) == N_CLIPS - 4 + 1  # clips 4-6, and clip 3 again
    assert out.read_bytes() == reference[0].read_bytes()
