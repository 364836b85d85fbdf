"""MMAU-Pro in its published layout (gamma-lab-umd/MMAU-Pro test.parquet, scored as its official
evaluate_mmau_pro_comprehensive.py splits it), and the `glitters` prompt style."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from akb.audio import SAMPLE_RATE
from akb.cli import main
from akb.data.audio_bench import LEFT_OUT, MULTI_AUDIO_GAP_S, detect_kind, item_audio, load_audio_benchmark
from akb.scoring.audio import grade_predictions, official_predictions, prediction_text
from akb.data.bank import BankError
from akb.data.items import MCQItem
from akb.probe.prompts import PROMPT_STYLES

CLIP_S = 0.1


def row(item_id, category="sound", clips=("data/a.wav",), choices=("Man", "Woman", "Child"), answer="Woman",
        **fields):
    """One test.parquet row, every published column present (values as the hub serves them)."""
    return {"id": item_id, "audio_path": list(clips), "question": f"Question {item_id}?", "answer": answer,
            "choices": list(choices), "length_type": "short", "perceptual_skills": ["counting"],
            "reasoning_skills": [], "category": category, "transcription": None, "task_classification": None,
            "task_identifier": None, "kwargs": None, "sub-cat": "animals", **fields}


@pytest.fixture
def published(tmp_path):
    """test.parquet beside data/ with its clips: single- and multi-audio multiple choice, an open
    question (category open, no choices), an instruction-following one (answer null), and an open
    item of a multiple-choice category without choices."""
    (tmp_path / "data").mkdir()
    for k, name in enumerate("abc"):
        sf.write(tmp_path / "data" / f"{name}.wav", np.full(int(CLIP_S * SAMPLE_RATE), 0.1 * (k + 1), "float32"),
                 SAMPLE_RATE)
    rows = [row("p1"), row("p2", category="multi", clips=("data/a.wav", "data/b.wav", "data/c.wav"),
                           choices=("first", "second", "third"), answer="second"),
            row("p3", category="open", choices=(), answer="A dog barks twice."),
            row("p4", category="instruction following", choices=(), answer=None, task_identifier="Title"),
            row("p5", category="speech", choices=(), answer="Two speakers."),
            row("p6", category="music", choices=("Piano", "Guitar"), answer="Guitar")]
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_multiple_choice_items_load_and_the_rest_is_reported(published, caplog):
    items, problems = load_audio_benchmark(published, kind="auto")
    assert [it.id for it in items] == ["p1", "p2", "p6"]
    assert [(p.item_id, p.severity) for p in problems] == [("p3", LEFT_OUT), ("p4", LEFT_OUT), ("p5", LEFT_OUT)]
    assert [p.message.split(" item")[0] for p in problems] == ["open-ended", "instruction-following", "open-ended"]
    # One warning for all of them, never silence.
    [warning] = [r for r in caplog.records if "left out" in r.getMessage()]
    assert "3 item(s) left out, not multiple choice (1 instruction-following, 2 open-ended)" in warning.getMessage()
    p1, p2, _ = items
    assert (p1.domain, p1.category, p1.subcategory, p1.answer) == ("sound", "sound", "animals", "Woman")
    assert p1.audio == str(published.parent / "data/a.wav") and p1.clips == ()
    assert p2.clips == tuple(str(published.parent / f"data/{n}.wav") for n in "abc") and p2.audio == p2.clips[0]
    assert p1.extra["perceptual_skills"] == ["counting"] and detect_kind(p1.extra) == "mmau-pro"


def test_a_multi_audio_item_plays_its_clips_in_order_with_silence_between(published):
    _, p2, _ = load_audio_benchmark(published)[0]
    audio = item_audio(p2)
    clip, gap = int(CLIP_S * SAMPLE_RATE), int(MULTI_AUDIO_GAP_S * SAMPLE_RATE)
    assert audio.shape == (3 * clip + 2 * gap,)
    starts = [0, clip + gap, 2 * (clip + gap)]
    assert [round(float(audio[s]), 3) for s in starts] == [0.1, 0.2, 0.3]
    assert not audio[clip:clip + gap].any() and not audio[2 * clip + gap:starts[2]].any()


def test_every_clip_of_an_item_is_checked(published, tmp_path):
    (tmp_path / "data" / "c.wav").unlink()
    with pytest.raises(BankError, match=r"(?s)1 bad item.*p2: .*c\.wav: audio file not found"):
        load_audio_benchmark(published)
    rows = [row("x1", clips=("data/a.wav", "../outside.wav"))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(BankError, match=r"x1: clip path '\.\./outside\.wav' leads outside the audio root"):
        load_audio_benchmark(tmp_path / "bad.parquet")


def test_mmar_keeps_its_kind_beside_mmau_pro(tmp_path):
    """Both name the clip `audio_path`: a list is MMAU-Pro's, a path MMAR's."""
    assert detect_kind({"audio_path": "audio/x.wav"}) == "mmar"
    assert detect_kind({"audio_path": ["data/x.wav"]}) == "mmau-pro"
    assert detect_kind({"audio_id": "x.wav"}) == "mmau"


def test_validate_command_lists_the_left_out_items(published, tmp_path):
    out = tmp_path / "validation.json"
    assert main(["validate-audio-benchmark", "--benchmark", str(published), "--kind", "mmau-pro",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["items"], report["left_out"], report["domains"]) == (3, 3, ["multi", "music", "sound"])
    assert [p["item_id"] for p in report["problems"] if p["severity"] == LEFT_OUT] == ["p3", "p4", "p5"]


def test_official_records_carry_the_answer_where_the_official_script_reads_it(published):
    items, _ = load_audio_benchmark(published)
    records = official_predictions(items, [{"id": "p1", "raw_output": "B: Woman"}])
    assert records[0]["model_output"] == "Woman" and records[0]["sub-cat"] == "animals"
    assert records[0]["audio_path"] == ["data/a.wav"] and records[1]["model_output"] == ""


ITEM = MCQItem(id="g1", question="Who speaks?", choices=("Man", "Woman", "Child"), answer="Woman")


def test_glitters_prompt_lists_options_as_letter_colon_text():
    assert PROMPT_STYLES["glitters"].system_prompt is None
    assert PROMPT_STYLES["glitters"].question(ITEM) == (
        "Who speaks?\n\nOptions:\nA: Man\nB: Woman\nC: Child\n\n"
        "Answer with the full option text (you may include the letter).")


def test_glitters_prompt_has_its_mmau_pro_instruction(published):
    p1 = load_audio_benchmark(published)[0][0]
    assert PROMPT_STYLES["glitters"].question(p1) == (
        "Question p1?\n\nOptions:\nA: Man\nB: Woman\nC: Child\n\n"
        "Answer with the correct option text (you may include the letter).")


@pytest.mark.parametrize("output, status, correct", [
    ("B: Woman", "letter", True),  # the form the prompt shows
    ("A: Man", "letter", False),
    ("Woman", "option_text", True),  # the full option text, as asked
    ("The answer is B: Woman.", "letter", True),
    ("Man", "option_text", False),
    ("B", "letter", True),
])
def test_glitters_answers_are_read(output, status, correct):
    assert prediction_text(ITEM, output)[1] == status
    [graded] = grade_predictions([ITEM], [{"id": "g1", "raw_output": output}])
    assert graded["correct"] is correct


def test_the_workflow_reads_test_parquet_as_it_is_and_counts_every_clip(published, tmp_path):
    from akb.data.hf_bench import is_hf_source
    from akb.assets.readiness import check_benchmark

    # Other parquet sources hold the audio and are imported first; MMAU-Pro's holds clip paths.
    assert is_hf_source(str(published)) and not is_hf_source(str(published), "mmau-pro")
    (tmp_path / "data" / "c.wav").unlink()  # the third clip of the multi-audio item
    check = check_benchmark({"name": "mmau-pro", "source": str(published), "kind": "mmau-pro"})
    assert check.detail.startswith("3 items, 2 of 3 clips present")
