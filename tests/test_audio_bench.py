import json
import logging
import re

import numpy as np
import pytest
import soundfile as sf

from akb.audio import SAMPLE_RATE
from akb.scoring.audio import grade_predictions, official_predictions, prediction_text, score_audio_predictions
from akb.data.audio_bench import load_audio_benchmark
from akb.data.bank import BankError
from akb.data.items import MCQItem
from akb.probe.prompts import lettered_question, loglik_context
from akb.scoring.answers import string_match

SPEAKERS = ["Man", "Woman", "Child", "Robot"]
MODALITIES = ["speech", "sound", "music", "mix-sound-speech", "mix-music-speech"]
HINTS = {"thinking": "SECRET-THINKING it is the woman", "cue": "SECRET-CUE pitch", "rubric": "SECRET-RUBRIC"}


def write_clip(path, silent=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    sf.write(path, np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 440 * t), SAMPLE_RATE)


def mmau_record(i):
    return {"id": f"mmau-{i}", "audio_id": f"./test-mini-audios/mmau-{i}.wav",
            "question": "Based on the given audio, identify the source of the speech.",
            "choices": list(SPEAKERS), "answer": SPEAKERS[i % 4], "dataset": "AudioSet",
            "task": ["sound", "music", "speech"][i % 3], "split": "test-mini", "category": "Reasoning",
            "sub-category": "Acoustic Source Inference", "difficulty": "medium"}


def mmar_record(i):
    return {"id": f"mmar-{i}", "audio_path": f"./audio/mmar-{i}.wav", "question": "Who speaks last?",
            "choices": list(SPEAKERS[: 2 + i % 3]), "answer": SPEAKERS[1], "modality": MODALITIES[i % 5],
            "category": "Semantic Layer", "sub-category": "Speaker analysis", "language": "en",
            "source": "YouTube", "url": "https://example.org/v", "timestamp": "00:10-00:20", **HINTS}


def write_benchmark(directory, records, name, audio_key):
    """The benchmark file with a real clip for each record; returns its path."""
    for record in records:
        write_clip(directory / record[audio_key])
    path = directory / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records, indent=2))
    return path


@pytest.fixture
def mmau_file(tmp_path):
    records = [mmau_record(i) for i in range(6)]
    records[2]["category"] = ["Information Extraction"]  # as 13 real items do
    return write_benchmark(tmp_path, records, "mmau-test-mini.json", "audio_id")


@pytest.fixture(params=["MMAR-meta.json", "MMAR-meta.jsonl"])
def mmar_file(tmp_path, request):
    return write_benchmark(tmp_path, [mmar_record(i) for i in range(5)], request.param, "audio_path")


def test_mmau_is_normalised(mmau_file):
    items, problems = load_audio_benchmark(mmau_file)
    assert problems == [] and [it.id for it in items] == [f"mmau-{i}" for i in range(6)]
    first, listed = items[0], items[2]
    assert listed.category == "Information Extraction" and first.category == "Reasoning"
    assert first.subcategory == "Acoustic Source Inference" and first.answer == "Man"
    assert [it.domain for it in items[:3]] == ["sound", "music", "speech"]
    assert first.audio == str(mmau_file.parent / "test-mini-audios" / "mmau-0.wav")
    assert first.extra == {"audio_id": "./test-mini-audios/mmau-0.wav", "dataset": "AudioSet",
                           "split": "test-mini", "difficulty": "medium"}


def test_mmar_modalities_are_domains_and_hints_stay_hidden(mmar_file):
    items, _ = load_audio_benchmark(mmar_file)
    assert [it.domain for it in items] == MODALITIES  # mixed modalities are groups of their own
    assert [len(it.choices) for it in items] == [2, 3, 4, 2, 3]
    for it in items:
        assert it.hidden == HINTS
        visible = [it.question, *it.choices, it.category, it.subcategory, it.domain, it.audio,
                   json.dumps(it.extra), repr(it), lettered_question(it), loglik_context(it),
                   json.dumps(it.to_bank_record())]
        assert not any("SECRET" in text for text in visible)


def test_audio_root_and_kind(tmp_path, mmau_file):
    meta = tmp_path / "meta"
    meta.mkdir()
    moved = meta / "mmau.json"
    moved.write_text(mmau_file.read_text())
    with pytest.raises(BankError, match="audio file not found"):
        load_audio_benchmark(moved)  # clips are looked for next to the file by default
    items, _ = load_audio_benchmark(moved, kind="mmau", audio_root=tmp_path)
    assert items[0].audio == str(tmp_path / "test-mini-audios" / "mmau-0.wav")
    with pytest.raises(BankError, match="unknown benchmark kind 'mmx'"):
        load_audio_benchmark(mmau_file, kind="mmx")
    (tmp_path / "other.json").write_text(json.dumps([{"id": "x", "question": "?"}]))
    with pytest.raises(BankError, match="other.json: cannot tell MMAU from MMAR"):
        load_audio_benchmark(tmp_path / "other.json")


@pytest.mark.parametrize("name, text, message", [
    ("b.json", '[\n  {"id": "a",\n   oops}\n]', r"b.json: not valid JSON \(line 3"),
    ("b.jsonl", '{"id": "a"}\n{"id": oops}\n', r"b.jsonl, line 2: not valid JSON"),
])
def test_malformed_json_names_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(BankError, match=message):
        load_audio_benchmark(tmp_path / name)


def _drop_question(records, directory):
    del records[1]["question"]


def _answer_not_a_choice(records, directory):
    records[1]["answer"] = "Dog"


def _one_choice(records, directory):
    records[1]["choices"], records[1]["answer"] = ["Man"], "Man"


def _one_choice_after_empty_ones(records, directory):
    records[1]["choices"], records[1]["answer"] = ["Man", "", " "], "Man"


def _nine_choices(records, directory):
    records[1]["choices"] = [f"voice {k}" for k in range(9)]
    records[1]["answer"] = "voice 0"


def _duplicate_id(records, directory):
    records[2]["id"] = "mmau-1"


def _missing_clip(records, directory):
    (directory / "test-mini-audios" / "mmau-1.wav").unlink()


def _corrupt_clip(records, directory):
    (directory / "test-mini-audios" / "mmau-1.wav").write_bytes(b"RIFF\x00\x00not audio at all")


@pytest.mark.parametrize("spoil, problem", [
    (_drop_question, "missing field(s) ['question']"),
    (_answer_not_a_choice, "answer 'Dog' is not one of the choices ['Man', 'Woman', 'Child', 'Robot']"),
    (_one_choice, "has 1 choices; needs 2 to 8"),
    (_one_choice_after_empty_ones, "has 1 choices; needs 2 to 8"),
    (_nine_choices, "has 9 choices; needs 2 to 8"),
    (_duplicate_id, "id used by 2 items"),
    (_missing_clip, "mmau-1.wav: audio file not found"),
    (_corrupt_clip, "mmau-1.wav: cannot decode audio"),
])
def test_bad_items_are_named_or_skipped_never_silently(tmp_path, caplog, spoil, problem):
    records = [mmau_record(i) for i in range(4)]
    path = write_benchmark(tmp_path, records, "mmau.json", "audio_id")
    spoil(records, tmp_path)
    path.write_text(json.dumps(records))

    with pytest.raises(BankError) as raised:
        load_audio_benchmark(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: 1 bad item(s):")
    assert "error: mmau-1: " in message and problem in message

    with caplog.at_level(logging.WARNING):
        items, problems = load_audio_benchmark(path, on_bad_item="skip")
    assert [(p.item_id, p.severity) for p in problems] == [("mmau-1", "error")]
    assert problem in problems[0].message and problem in caplog.text
    expected = {"mmau-0", "mmau-3"} if spoil is _duplicate_id else {"mmau-0", "mmau-2", "mmau-3"}
    assert {it.id for it in items} == expected


def test_every_bad_item_is_reported_at_once(tmp_path):
    records = [mmau_record(i) for i in range(4)]
    records[0]["answer"], records[3]["choices"] = "Dog", "Man"
    path = write_benchmark(tmp_path, records, "mmau.json", "audio_id")
    with pytest.raises(BankError, match=r"2 bad item\(s\):\n  error: mmau-0: .*\n  error: mmau-3: "):
        load_audio_benchmark(path)
    for record in records:
        record["answer"] = "Dog"
    path.write_text(json.dumps(records))
    with pytest.raises(BankError, match="mmau.json: no usable items"):
        load_audio_benchmark(path, on_bad_item="skip")


def test_silent_clip_is_a_warning_when_decoding(tmp_path):
    path = write_benchmark(tmp_path, [mmau_record(i) for i in range(2)], "mmau.json", "audio_id")
    write_clip(tmp_path / "test-mini-audios" / "mmau-1.wav", silent=True)
    assert load_audio_benchmark(path)[1] == []  # the header check cannot hear silence
    items, problems = load_audio_benchmark(path, check_audio="decode")
    assert len(items) == 2
    assert [(p.item_id, p.severity) for p in problems] == [("mmau-1", "warning")]
    assert "audio is silent" in problems[0].message


def item(choices, answer, domain="sound", item_id="q"):
    return MCQItem(id=item_id, question="?", choices=tuple(choices), answer=answer, domain=domain,
                   category="Reasoning")


NOTES = ["C major", "D minor", "E major", "F minor", "G major"]


@pytest.mark.parametrize("it, output, text, status, correct", [
    # A bare letter fails the official rule unless mapped to its option first.
    (item(SPEAKERS, "Woman"), "B", "Woman", "letter", True),
    (item(SPEAKERS, "Woman"), "The answer is (B).", "Woman", "letter", True),
    (item(SPEAKERS, "Woman"), "A woman's voice.", "A woman's voice.", "option_text", True),
    # Echoing every option, or naming a distractor next to the answer, is wrong.
    (item(SPEAKERS, "Woman"), "Man, Woman, Child or Robot", "Man, Woman, Child or Robot", "unparseable", False),
    (item(SPEAKERS, "Woman"), "(A) Man (B) Woman (C) Child (D) Robot", "Man", "letter", False),
    (item(SPEAKERS, "Child"), "It is a child, not a robot.", "It is a child, not a robot.", "unparseable", False),
    (item(SPEAKERS, "Woman"), "<think>Maybe B?</think>", "", "unparseable", False),
    # Two choices: only A and B are letters.
    (item(["Yes", "No"], "No"), "B", "No", "letter", True),
    (item(["Yes", "No"], "No"), "No.", "No.", "option_text", True),
    (item(["Yes", "No"], "No"), "C", "C", "unparseable", False),
    # Five choices: E is a letter; an option's text that starts with a letter is not.
    (item(NOTES, "G major"), "E", "G major", "letter", True),
    (item(NOTES, "G major"), "E major", "E major", "option_text", False),
    (item(NOTES, "G major"), "It is in G major.", "It is in G major.", "option_text", True),
    (item(NOTES, "G major"), None, "", "missing", False),
])
def test_letters_are_mapped_before_the_official_rule(it, output, text, status, correct):
    assert prediction_text(it, output) == (text, status)
    [graded] = grade_predictions([it], [] if output is None else [{"id": "q", "raw_output": output}])
    assert (graded["prediction"], graded["parse_status"], graded["correct"]) == (text, status, correct)


def test_bare_letter_is_wrong_under_the_official_rule_alone():
    assert not string_match("Woman", "B", SPEAKERS)


def test_every_item_counts_in_the_score():
    items = [item(SPEAKERS, "Woman", d, f"q{k}") for k, d in enumerate(["sound", "sound", "music", "speech"])]
    rows = [{"id": "q0", "raw_output": "B"}, {"id": "q1", "raw_output": "A"},
            {"id": "q2", "raw_output": None}]  # q2 null, q3 absent: both missing
    scores = score_audio_predictions(items, rows, n_resamples=200)
    assert (scores["n"], scores["correct"], scores["missing"]) == (4, 1, 2)
    assert scores["accuracy"] == 25.0 and scores["ci"][0] <= 25.0 <= scores["ci"][1]
    assert {d: s["n"] for d, s in scores["by_domain"].items()} == {"sound": 2, "music": 1, "speech": 1}
    assert scores["by_domain"]["sound"]["accuracy"] == 50.0
    assert scores["by_category"]["Reasoning"]["n"] == 4
    with pytest.raises(ValueError, match=r"1 unknown id\(s\) \['elsewhere'\]"):
        score_audio_predictions(items, rows + [{"id": "elsewhere", "raw_output": "A"}])
    with pytest.raises(ValueError, match=r"1 repeated id\(s\) \['q0'\]"):
        score_audio_predictions(items, rows + [{"id": "q0", "raw_output": "A"}])


def test_official_records_carry_the_prediction_key_and_rescore_alike(mmau_file, tmp_path):
    items, _ = load_audio_benchmark(mmau_file)
    rows = [{"id": "mmau-0", "raw_output": "A"}, {"id": "mmau-1", "raw_output": "It is a woman."},
            {"id": "mmau-2", "raw_output": "Robot or child"}]
    records = official_predictions(items, rows)
    first = records[0]
    assert set(first) == {"id", "audio_id", "question", "choices", "answer", "dataset", "task", "split",
                          "category", "sub-category", "difficulty", "model_output"}
    assert first["audio_id"] == "./test-mini-audios/mmau-0.wav" and first["model_output"] == "Man"
    assert [r["model_output"] for r in records[3:]] == ["", "", ""]  # missing: present and wrong
    official = [string_match(r["answer"], r["model_output"], r["choices"]) for r in records]
    scores = score_audio_predictions(items, rows)
    assert sum(official) == scores["correct"] == 2 and len(records) == scores["n"] == 6
    json.dumps(records)

    mmar_items, _ = load_audio_benchmark(
        write_benchmark(tmp_path / "mmar", [mmar_record(i) for i in range(3)], "MMAR-meta.json", "audio_path"))
    [record, *_] = official_predictions(mmar_items, [{"id": "mmar-0", "raw_output": "B"}], kind="mmar")
    assert record["answer_prediction"] == "Woman" and record["modality"] == "speech"
    assert record["audio_path"] == "./audio/mmar-0.wav" and record["language"] == "en"
    assert not set(HINTS) & set(record) and "model_output" not in record
    with pytest.raises(ValueError, match="unknown benchmark kind"):
        official_predictions([item(SPEAKERS, "Man")], [])


def test_prediction_key_can_be_an_official_one(mmau_file):
    items, _ = load_audio_benchmark(mmau_file)
    scores = score_audio_predictions(items, [{"id": "mmau-0", "model_output": "Man"}], output_key="model_output")
    assert (scores["correct"], scores["missing"]) == (1, 5)


def test_problem_messages_read_cleanly(tmp_path):
    records = [mmau_record(0)]
    records[0]["choices"] = "Man"
    path = write_benchmark(tmp_path, records, "mmau.json", "audio_id")
    with pytest.raises(BankError) as raised:
        load_audio_benchmark(path)
    assert re.search(r"error: mmau-0: field 'choices' must be a list of strings", str(raised.value))


def test_an_empty_option_is_no_option(tmp_path, caplog):
    """As in 4 published MMAR items: the item stays, the empty option goes (with a warning), and the
    letters follow the options that remain."""
    records = [mmar_record(i) for i in range(3)]
    records[2]["choices"] = ["Man", "", "Woman"]
    path = write_benchmark(tmp_path, records, "MMAR-meta.jsonl", "audio_path")
    with caplog.at_level(logging.WARNING):
        items, problems = load_audio_benchmark(path)
    assert [it.id for it in items] == ["mmar-0", "mmar-1", "mmar-2"]
    assert items[2].choices == ("Man", "Woman") and items[2].answer_letter == "B"
    assert [(p.item_id, p.severity) for p in problems] == [("mmar-2", "warning")]
    assert "mmar-2: empty option(s) dropped" in caplog.text


def _escapes(tmp_path):
    """A benchmark under bench/ whose items 1-3 name a real clip outside it: by '..', by an absolute
    path, and through a symlink inside the folder that points out."""
    outside = tmp_path / "private" / "secret.wav"
    write_clip(outside)
    records = [mmau_record(i) for i in range(4)]
    path = write_benchmark(tmp_path / "bench", records[:1], "mmau.json", "audio_id")
    records[1]["audio_id"] = "../private/secret.wav"
    records[2]["audio_id"] = str(outside)
    (tmp_path / "bench" / "link.wav").symlink_to(outside)
    records[3]["audio_id"] = "./link.wav"
    path.write_text(json.dumps(records))
    return path, outside


def test_clips_leading_outside_the_audio_root_are_refused_unless_allowed(tmp_path, caplog):
    path, outside = _escapes(tmp_path)
    with pytest.raises(BankError) as raised:
        load_audio_benchmark(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: 3 bad item(s):")
    for item_id, clip in [("mmau-1", "../private/secret.wav"), ("mmau-2", str(outside)), ("mmau-3", "./link.wav")]:
        assert f"error: {item_id}: clip path {clip!r} leads outside the audio root {path.parent} (to {outside})" \
            in message
    items, problems = load_audio_benchmark(path, on_bad_item="skip")
    assert [it.id for it in items] == ["mmau-0"] and {p.item_id for p in problems} == {"mmau-1", "mmau-2", "mmau-3"}
    items, problems = load_audio_benchmark(path, allow_outside_root=True)
    assert problems == [] and [it.id for it in items] == [f"mmau-{i}" for i in range(4)]
    # A root given explicitly is the boundary: under private/, the '..' and absolute paths are inside.
    _, problems = load_audio_benchmark(path, audio_root=tmp_path / "private", on_bad_item="skip")
    # Only the clips of mmau-0 and mmau-3 are missing there.
    assert ["leads outside" in p.message for p in problems] == [False, False]


def test_the_cli_refuses_an_escaping_clip_in_one_line_and_the_flag_allows_it(tmp_path, caplog):
    from akb.cli import main

    path, _ = _escapes(tmp_path)
    args = ["validate-audio-benchmark", "--benchmark", str(path), "--out", str(tmp_path / "v.json")]
    assert main(args) == 2 and not (tmp_path / "v.json").exists()
    assert "mmau-1: clip path '../private/secret.wav' leads outside the audio root" in caplog.text
    assert "allow_outside_root: true" in caplog.text and "Traceback" not in caplog.text
    assert main([*args, "--allow-outside-root"]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["items"] == 4
