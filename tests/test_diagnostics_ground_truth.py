"""The diagnostics recover what synthetic items were built to need, for a listener that knows the facts.

The "model" is a deterministic listener: it names the noise colour the `dsp` captioner finds in
whatever audio it is given, or counts the bursts of sound in it; it knows the answers of the knowledge items; with no audio it guesses the first option.
Items whose count needs the whole clip must come out Cross-Segment, noise colours (decidable from
any part) Fragment-Sufficient, and knowledge items must never need audio."""

import json
import re

import numpy as np
import pytest

from akb.audio import load_audio
from akb.captioners.dsp import caption_clip
from akb.data.audio_bench import load_audio_benchmark
from akb.data.synthetic import generate_split
from akb.diagnostics.analysis import ANY_PART, CROSS_SEGMENT, TEXT_SOLVABLE, WHOLE_CLIP, item_classes, reliance_agreement, suite_reliance
from akb.diagnostics.conditions import REQUIRED_CONDITIONS, FragmentError, condition_audio

FAMILIES = {"noise_colour", "event_count", "knowledge_sound", "knowledge_music", "knowledge_speech"}


def listen(item, audio) -> str:
    if item.subcategory.startswith("knowledge"):
        return item.answer  # it knows the facts
    if audio is None:
        return item.choices[0]
    if item.subcategory == "noise_colour":
        named = re.search(r"closest to (\w+)", caption_clip(audio))
        return next((c for c in item.choices if named and c.startswith(named.group(1))), item.choices[0])
    n = str(count_events(audio))
    return n if n in item.choices else item.choices[0]


def count_events(audio: np.ndarray, sr: int = 16000) -> int:
    """Bursts of sound: 10 ms frames within 20 dB of the loudest, gaps under 80 ms bridged."""
    frame = sr // 100
    n = len(audio) // frame
    level = 20 * np.log10(np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) + 1e-9)
    loud = np.flatnonzero(level > level.max() - 20)
    return int(len(loud) > 0) + int((np.diff(loud) > 8).sum())


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = generate_split(tmp_path_factory.mktemp("suite"), 3, "test", 90, speech_engine="formant")
    raw = [r for r in json.loads(path.read_text()) if r["sub-category"] in FAMILIES]
    items = [it for it in load_audio_benchmark(path)[0] if it.subcategory in FAMILIES]
    rows = []
    for item in items:
        clip = load_audio(item.audio)
        for condition in REQUIRED_CONDITIONS:
            try:
                answer, error = listen(item, condition_audio(clip, condition)), None
            except FragmentError as e:
                answer, error = None, str(e)
            rows.append({"model": "listener", "benchmark": "synthetic", "id": item.id, "condition": condition,
                         "domain": item.domain, "correct": answer == item.answer, "error": error})
    return rows, suite_reliance(raw)


def test_diagnostics_recover_the_built_reliance(records):
    rows, reliance = records
    classes = item_classes(rows)
    (agreement,) = reliance_agreement(classes, reliance).to_dict("records")
    print("\nreliance agreement:", agreement)  # reported in the README
    assert agreement["cross_segment"] >= 3
    assert agreement["cross_segment_whole"] == 1.0  # every Cross-Segment item was built to need the whole clip
    assert agreement["any_fragment_sufficient"] == 1.0  # any-part items are solved from a fragment
    assert agreement["no_audio_needed"] == 0
    built = classes["id"].map(reliance)
    assert set(classes.loc[built == "none", "item_class"]) == {TEXT_SOLVABLE}
    assert (classes.loc[built == WHOLE_CLIP, "item_class"] == CROSS_SEGMENT).mean() >= 0.5
    assert not (classes.loc[built == ANY_PART, "item_class"] == CROSS_SEGMENT).any()
