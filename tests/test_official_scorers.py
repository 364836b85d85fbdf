"""The published MMAU test-mini and MMAR files, loaded whole with default settings and scored over all
1,000 items each: the official scorers, run on the official-format file `akb score-audio` writes,
agree with the project's own accuracy, overall and per domain.

MMAU's metadata and scorer are vendored (Apache-2.0, tests/data/mmau). MMAR's state no licence: they
are read from $AKB_MMAR_DIR or ../shared/benchmarks beside the checkout, and the MMAR cases skip
when neither has them."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from akb.cli import main
from akb.data.audio_bench import FORMATS, load_audio_benchmark
from akb.data.bank import read_records

ROOT = Path(__file__).resolve().parents[1]
MMAU_DIR = ROOT / "tests" / "data" / "mmau"
MMAR_DIR = Path(os.environ.get("AKB_MMAR_DIR", ROOT.parent / "shared" / "benchmarks"))
PUBLISHED = {
    "mmau": (MMAU_DIR / "mmau-test-mini.json", MMAU_DIR / "mmau_evaluation.py"),
    "mmar": (MMAR_DIR / "MMAR-meta.jsonl", MMAR_DIR / "mmar_evaluation.py"),
}
OFFICIAL_LINE = re.compile(r"^(?P<group>[^*\n]+?) : (?P<acc>[\d.]+)% over (?P<n>\d+) samples$", re.MULTILINE)
TOTAL_LINE = re.compile(r"Total Accuracy: (?P<acc>[\d.]+)% over (?P<n>\d+) samples")


def published(kind):
    meta, scorer = PUBLISHED[kind]
    if not (meta.is_file() and scorer.is_file()):
        pytest.skip(f"{kind}: published metadata or scorer not found at {meta.parent} (set AKB_MMAR_DIR)")
    return meta, scorer


@pytest.fixture(scope="module", params=["mmau", "mmar"])
def benchmark(request, tmp_path_factory):
    """(kind, metadata path, scorer path, audio root) with a placeholder clip for every item."""
    kind = request.param
    meta, scorer = published(kind)
    root = tmp_path_factory.mktemp(f"{kind}-audio")
    silence = np.zeros(1600, dtype=np.float32)
    for record in read_records(str(meta)):
        clip = root / record[FORMATS[kind].audio_key]
        clip.parent.mkdir(parents=True, exist_ok=True)
        sf.write(clip, silence, 16000)
    return kind, meta, scorer, root


def varied_output(item, rng):
    """What models really write: letters in several forms, option texts, hedges between two options,
    reasoning blocks, refusals, empty replies, and (as None) no prediction row at all."""
    wrong = [c for c in item.choices if c != item.answer] or [item.answer]
    letter = item.letters[item.choices.index(rng.choice(item.choices))]
    return rng.choice([
        item.answer_letter, f"({letter})", f"The answer is {letter}.", item.answer, item.answer.upper(),
        f"It is {rng.choice(wrong)}.", f"{item.answer} or maybe {rng.choice(wrong)}",
        f"<think>Could be {rng.choice(wrong)}.</think>{item.answer}", "I cannot tell from the audio.",
        "", None, f"{letter}) {item.choices[item.letters.index(letter)]}",
    ])


def run_official(scorer, path):
    done = subprocess.run([sys.executable, str(scorer), "--input", str(path)],
                          capture_output=True, text=True, timeout=120, check=True)
    total = TOTAL_LINE.search(done.stdout)
    groups = {m["group"].strip(): (float(m["acc"]), int(m["n"])) for m in OFFICIAL_LINE.finditer(done.stdout)}
    return float(total["acc"]), int(total["n"]), groups


def test_published_files_load_whole(benchmark):
    kind, meta, _, root = benchmark
    items, problems = load_audio_benchmark(meta, audio_root=root)  # default settings otherwise
    assert len(items) == 1000 and all(p.severity == "warning" for p in problems)
    if kind == "mmar":
        # The 4 items with an empty option keep their other options; no letter stands for "".
        emptied = {p.item_id for p in problems if "empty option" in p.message}
        assert len(emptied) == 4
        assert all(all(c for c in it.choices) for it in items)
        assert sorted(len(it.choices) for it in items if it.id in emptied) == [2, 4, 4, 4]
    else:
        repeated = [it for it in items if len(set(it.choices)) < len(it.choices)]
        assert len(repeated) == 27  # kept as published, with a warning each
        assert {p.item_id for p in problems if "listed twice" in p.message} == {it.id for it in repeated}
        assert sum(1 for it in items if it.domain == "sound") == 333


def test_official_scorer_agrees_on_every_item(benchmark, tmp_path):
    kind, meta, scorer, root = benchmark
    items, _ = load_audio_benchmark(meta, audio_root=root)
    rng = random.Random(13)
    rows = [{"id": it.id, "raw_output": out} for it in items if (out := varied_output(it, rng)) is not None]
    assert 0 < len(rows) < len(items)  # some items have no prediction at all
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores, official = tmp_path / "scores.json", tmp_path / "official.json"
    code = main(["score-audio", "--benchmark", str(meta), "--audio-root", str(root), "--predictions",
                 str(predictions), "--model-name", "m", "--captioner-name", "c", "--benchmark-name", kind,
                 "--resamples", "10", "--out", str(scores), "--official-out", str(official)])
    assert code == 0
    ours = json.loads(scores.read_text())
    accuracy, n, groups = run_official(scorer, official)
    # Every item counts in both: the official scripts skip items without a prediction key, so the
    # project writes "" for those rather than leaving the key out.
    assert n == ours["n"] == 1000
    assert accuracy == pytest.approx(ours["accuracy"], abs=0.005)
    assert 20 < accuracy < 80  # the varied outputs give a mix of right and wrong, not a degenerate file
    for domain, summary in ours["by_domain"].items():
        assert groups[domain] == (pytest.approx(summary["accuracy"], abs=0.005), summary["n"])
    assert ours["missing"] == len(items) - len(rows)


def test_repeated_option_is_scored_as_the_official_rule_scores_it():
    meta, _ = published("mmau")
    record = next(r for r in read_records(str(meta)) if r["id"] == "16964657-d35e-426a-8c3e-6aac228a2577")
    assert record["choices"] == ["thirteen", "twenty", "thirteen", "five"] and record["answer"] == "thirteen"
    from akb.scoring.audio import prediction_text
    from akb.data.items import MCQItem
    from akb.scoring.answers import string_match

    item = MCQItem(id=record["id"], question=record["question"], choices=tuple(record["choices"]),
                   answer=record["answer"])
    for output in ("A", "C", "thirteen", "The answer is thirteen."):
        text, status = prediction_text(item, output)
        assert status in ("letter", "option_text") and string_match(item.answer, text, item.choices), output
    text, status = prediction_text(item, "twenty")
    assert status == "option_text" and not string_match(item.answer, text, item.choices)
