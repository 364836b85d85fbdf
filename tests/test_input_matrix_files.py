"""The malformed-input matrix for the text and data files a user hands the workflow.

Every case runs the command a user (or the workflow's rule) runs on that file, through `akb.cli.main`
(tests/verdicts.py), and reads its verdict: refused (exit != 0, a message naming the file and the
item, line or field, no output), warned (exit 0, the warning names the items), or accepted (exit 0,
and what was loaded is checked). File kinds: question banks (JSONL, JSON, CSV; `prepare-bank` as the
workflow runs it, `validate-bank` as a user checks one), MMAU and MMAR benchmark files
(`validate-audio-benchmark`), caption files (`caption` with the `file` captioner), DeSTA-AQA5M rows
(`convert-desta-seeds`) and distillation seeds (`distill`, whose --merge mode needs no model).
Variants: empty, blank, other encodings, binary, truncated, wrong types, missing and empty fields,
duplicates, unknown keys, wrong references; and the accepted spellings, which must load.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from verdicts import akb_verdict

CLIPS = ("m0", "m1", "r0", "r1")


def _wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(np.arange(1600) / 5.0), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


WAV = _wav()

# ---- good files of each kind; each case spoils one thing ----

BANK = [
    {"id": "q0", "category": "Music", "subcategory": "dynamics", "answer": "A",
     "question": "Which marking asks for a gradual increase in loudness?",
     "options": ["crescendo", "diminuendo", "ritardando", "fermata"]},
    {"id": "q1", "category": "Sound", "subcategory": "scene", "answer": "B",
     "question": "Which room gives the longest reverberation?",
     "options": ["a closet", "a cathedral", "a car", "an anechoic chamber"]},
    {"id": "q2", "category": "Technical", "subcategory": "units", "answer": "C",
     "question": "How many decibels double the sound power?", "options": ["1 dB", "2 dB", "3 dB", "6 dB"]},
    {"id": "q3", "category": "Phonetic", "subcategory": "vowels", "answer": "D",
     "question": "Which vowel is produced with rounded lips?", "options": ["/i/", "/e/", "/a/", "/u/"]},
]  # fmt: skip
MMAU = [
    {"id": "m0", "audio_id": "./clips/m0.wav", "question": "What is the source of the sound?",
     "choices": ["dog", "car", "rain", "bell"], "answer": "dog", "task": "sound", "category": "Reasoning",
     "sub-category": "source", "metadata": {"summary": "a dog barks twice"}},
    {"id": "m1", "audio_id": "./clips/m1.wav", "question": "Which instrument plays?",
     "choices": ["piano", "violin", "drums", "flute"], "answer": "violin", "task": "music",
     "category": "Perception", "sub-category": "instrument", "metadata": {"summary": "a violin plays a scale"}},
]  # fmt: skip
MMAR = [
    {"id": "r0", "audio_path": "./clips/r0.wav", "question": "Who speaks last?", "choices": ["Man", "Woman"],
     "answer": "Woman", "modality": "speech", "category": "Semantic Layer"},
    {"id": "r1", "audio_path": "./clips/r1.wav", "question": "Is there distortion?", "choices": ["Yes", "No"],
     "answer": "No", "modality": "mix-sound-speech", "category": "Signal Layer"},
]  # fmt: skip
CAPTIONS = [{"id": "m0", "caption": "A dog barks twice."}, {"id": "m1", "caption": "A violin plays a scale."}]
DESTA = [
    {"id": f"train/clip_{i}.wav", "dataset": "AudioCaps", "seed_description": f"[00:00-00:01] (sound {i})",
     "prompt": "Describe the audio.", "response": f"A response about clip {i}."}
    for i in range(2)
]  # fmt: skip
SEEDS = [{"id": f"c{i}", "audio": f"clips/m{i}.wav", "seed_description": f"sound number {i}"} for i in range(2)]


def jsonl(records: list) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def json_array(records: list) -> str:
    return json.dumps(records, indent=1, ensure_ascii=False)


def csv_text(records: list[dict]) -> str:
    """A CSV bank as a spreadsheet writes it: one column per field, lists as JSON text."""
    out = io.StringIO()
    writer = csv.DictWriter(out, list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in records)
    return out.getvalue()


def spoiled(records: list[dict], index: int, **changes) -> list[dict]:
    """A copy of `records` with record `index` changed (a value of DROP removes the key)."""
    copy = [dict(r) for r in records]
    for key, value in changes.items():
        if value is DROP:
            del copy[index][key]
        else:
            copy[index][key] = value
    return copy


DROP = object()


def latin1(text: str) -> bytes:
    """The text with an accented word on line 2, saved in Latin-1 as an old editor would."""
    lines = text.split("\n")
    lines[1] = lines[1].replace("?", " in a caf\u00e9?", 1) if "?" in lines[1] else lines[1] + " caf\u00e9"
    return "\n".join(lines).encode("latin-1")


def truncated(text: str) -> str:
    """Cut in the middle of the last record, as an interrupted copy leaves a file."""
    return text[: len(text.rstrip()) - 12]


# ---- the commands, one per file kind ----


@dataclass(frozen=True)
class Kind:
    file: str  # the name of the file the user hands over
    argv: Callable[[Path, Path, Path], list]  # (case folder, file, output) -> command line
    loaded: Callable[[Path], Any]  # what an accepted file became, read from the output
    setup: Callable[[Path], None] = lambda folder: None  # what else the command reads


def write_clips(folder: Path) -> None:
    (folder / "clips").mkdir()
    for clip in CLIPS:
        (folder / "clips" / f"{clip}.wav").write_bytes(WAV)


def bench_setup(folder: Path) -> None:
    """The benchmark a caption file describes, with its clips."""
    write_clips(folder)
    (folder / "mmau.json").write_text(json_array(MMAU))


def desta_setup(folder: Path) -> None:
    clips = folder / "corpus" / "train"
    clips.mkdir(parents=True)
    for i in range(2):
        (clips / f"clip_{i}.wav").write_bytes(WAV)


def seeds_setup(folder: Path, request_ids: list[str]) -> None:
    """Clips, and the one shard of answers `distill --merge` publishes once the seeds are read."""
    write_clips(folder)
    (folder / "part.jsonl").write_text(jsonl([{"id": i, "response": "ok"} for i in request_ids]))


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def bank_answers(out: Path) -> dict[str, str]:
    return {r["id"]: r["answer"] for r in rows_of(out)}


def prepare(folder: Path, file: Path, out: Path) -> list:
    return ["prepare-bank", "--source", file, "--out", out]


def validate(folder: Path, file: Path, out: Path) -> list:
    return ["validate-bank", file]


def validate_audio(folder: Path, file: Path, out: Path) -> list:
    return ["validate-audio-benchmark", "--benchmark", file, "--out", out]


def audio_report(out: Path) -> tuple[int, list[str]]:
    report = json.loads(out.read_text())
    return report["items"], report["domains"]


def caption(folder: Path, file: Path, out: Path) -> list:
    entry = {"name": "gemini", "backend": "file", "path": str(file)}
    return ["caption", "--benchmark", folder / "mmau.json", "--captioner", json.dumps(entry), "--out", out]


def convert(folder: Path, file: Path, out: Path) -> list:
    roots = {"AudioCaps": str(folder / "corpus")}
    return ["convert-desta-seeds", "--source", file, "--audio-roots", json.dumps(roots), "--out", out]


def distill(folder: Path, file: Path, out: Path) -> list:
    return ["distill", "--seeds", file, "--prompts", json.dumps(["Describe the audio."]), "--model", "{}",
            "--merge", folder / "part.jsonl", "--out", out]  # fmt: skip


def ids_of(out: Path) -> list[str]:
    return [r["id"] for r in rows_of(out)]


KINDS = {
    **{f"bank.{ext}": Kind(f"bank.{ext}", prepare, bank_answers) for ext in ("jsonl", "json", "csv")},
    **{f"validate bank.{ext}": Kind(f"bank.{ext}", validate, lambda out: None) for ext in ("jsonl", "json", "csv")},
    "mmau": Kind("mmau-test-mini.json", validate_audio, audio_report, write_clips),
    "mmar": Kind("MMAR-meta.json", validate_audio, audio_report, write_clips),
    "mmar.jsonl": Kind("MMAR-meta.jsonl", validate_audio, audio_report, write_clips),
    "captions": Kind("captions.jsonl", caption, lambda out: {r["id"]: r["caption"] for r in rows_of(out)},
                     bench_setup),
    "desta": Kind("audio.0.jsonl", convert, ids_of, desta_setup),
    "seeds": Kind("seeds.jsonl", distill, ids_of, lambda folder: seeds_setup(folder, ["c0#0", "c1#0"])),
    "seeds.json": Kind("train.json", distill, ids_of,
                       lambda folder: seeds_setup(folder, ["m0#0", "m0#1", "m1#0", "m1#1"])),
}  # fmt: skip


# ---- the cases ----


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    content: str | bytes
    verdict: str  # refused | warned | accepted
    names: tuple[str, ...] = ()  # besides the file: the item, line or field the message must name
    loaded: Any = None  # accepted: what the output holds (Kind.loaded)


def refused(id, kind, content, *names):
    return Case(id, kind, content, "refused", names)


def accepted(id, kind, content, loaded):
    return Case(id, kind, content, "accepted", loaded=loaded)


GOOD_ANSWERS = {"q0": "A", "q1": "B", "q2": "C", "q3": "D"}
UTF16 = "UTF-16"
NOT_UTF8 = "not UTF-8 text"
NO_ITEMS = "no items"

CASES = [
    # -- question banks --
    refused("bank-jsonl-empty", "validate bank.jsonl", "", NO_ITEMS),
    refused("bank-jsonl-blank-lines", "validate bank.jsonl", "\n  \n\t\n", NO_ITEMS),
    refused("bank-json-empty-file", "bank.json", "", NO_ITEMS),
    refused("bank-json-empty-list", "validate bank.json", "[]", NO_ITEMS),
    refused("bank-csv-empty", "bank.csv", "", NO_ITEMS),
    refused("bank-csv-header-only", "validate bank.csv", "id,question,options,answer\n", NO_ITEMS),
    refused("bank-jsonl-utf16", "bank.jsonl", jsonl(BANK).encode("utf-16"), UTF16),
    refused("bank-json-utf16", "validate bank.json", json_array(BANK).encode("utf-16"), UTF16),
    refused("bank-csv-utf16-no-bom", "bank.csv", csv_text(BANK).encode("utf-16-le"), "line 1", "NUL bytes"),
    refused("bank-jsonl-latin1", "bank.jsonl", latin1(jsonl(BANK)), "line 2", NOT_UTF8),
    refused("bank-csv-latin1", "bank.csv", latin1(csv_text(BANK)), "line 2", NOT_UTF8),
    refused("bank-jsonl-gzip-binary", "bank.jsonl", gzip.compress(jsonl(BANK).encode(), mtime=0), "line 1"),
    refused("bank-jsonl-truncated", "bank.jsonl", truncated(jsonl(BANK)), "line 4", "not valid JSON"),
    refused("bank-json-truncated", "bank.json", truncated(json_array(BANK)), "not valid JSON (line"),
    refused("bank-csv-truncated-in-quotes", "bank.csv", truncated(csv_text(BANK)), "q3", "'options'"),
    refused("bank-csv-row-with-extra-cells", "bank.csv", csv_text(BANK).replace("\nq2,", "\nq2,,", 1),
            "not valid CSV", "line 4"),
    refused("bank-json-not-an-array", "bank.json", json.dumps(BANK[0]), "JSON array"),
    refused("bank-record-not-an-object", "bank.jsonl", jsonl([BANK[0], ["q1", "a list"]]), "record #1"),
    refused("bank-options-a-string", "bank.jsonl", jsonl(spoiled(BANK, 1, options="a closet, a car")), "q1",
            "'options'"),
    refused("bank-answer-a-float", "bank.jsonl", jsonl(spoiled(BANK, 1, answer=1.0)), "q1", "answer 1.0"),
    refused("bank-id-a-list", "bank.json", json_array(spoiled(BANK, 1, id=["q1"])), "item #1", "'id'", "list"),
    refused("bank-question-a-number", "bank.jsonl", jsonl(spoiled(BANK, 1, question=42)), "q1", "'question'"),
    refused("bank-category-a-list", "bank.jsonl", jsonl(spoiled(BANK, 1, category=["Sound"])), "q1", "'category'"),
    refused("bank-extra-not-an-object", "bank.jsonl", jsonl(spoiled(BANK, 1, extra="note")), "q1", "'extra'"),
    refused("bank-missing-id", "bank.jsonl", jsonl(spoiled(BANK, 2, id=DROP)), "item #2 (no id)", "'id'"),
    refused("bank-missing-answer", "bank.jsonl", jsonl(spoiled(BANK, 1, answer=DROP)), "q1", "'answer'"),
    refused("bank-missing-options", "bank.jsonl", jsonl(spoiled(BANK, 0, options=DROP)), "q0", "'options'"),
    refused("bank-empty-question", "bank.csv", csv_text(spoiled(BANK, 1, question=" ")), "q1", "'question'"),
    refused("bank-empty-options", "bank.jsonl", jsonl(spoiled(BANK, 1, options=[])), "q1", "at least 2"),
    refused("bank-empty-answer", "bank.csv", csv_text(spoiled(BANK, 3, answer="")), "q3", "answer ''"),
    refused("bank-duplicate-ids", "bank.jsonl", jsonl(spoiled(BANK, 3, id="q1")), "q1", "id used by 2 items"),
    refused("bank-repeated-options", "bank.jsonl", jsonl(spoiled(BANK, 1, options=["a car", "A car", "x", "y"])),
            "q1", "options are not distinct"),
    refused("bank-duplicate-question-validate", "validate bank.jsonl",
            jsonl(spoiled(BANK, 3, question=BANK[0]["question"])), "q0", "same question as q3"),
    Case("bank-duplicate-question-prepare", "bank.jsonl", jsonl(spoiled(BANK, 3, question=BANK[0]["question"])),
         "warned", ("q0", "same question as q3")),
    refused("bank-answer-not-an-option", "bank.jsonl", jsonl(spoiled(BANK, 1, answer="a garage")), "q1",
            "answer 'a garage'"),
    refused("bank-answer-letter-beyond-options", "bank.jsonl", jsonl(spoiled(BANK, 1, answer="E")), "q1",
            "answer 'E'"),
    refused("bank-answer-number-ambiguous", "bank.csv",
            csv_text(spoiled(BANK, 2, options=["1", "2", "3", "6"], answer="2")), "q2", "ambiguous"),
    refused("bank-options-and-choices-differ", "bank.jsonl",
            jsonl(spoiled(BANK, 1, choices=["a closet", "a cathedral"])), "q1", "'options' and 'choices' differ"),
    accepted("bank-utf8-bom", "bank.jsonl", b"\xef\xbb\xbf" + jsonl(BANK).encode(), GOOD_ANSWERS),
    accepted("bank-csv-utf8-bom-excel", "bank.csv", b"\xef\xbb\xbf" + csv_text(BANK).encode(), GOOD_ANSWERS),
    accepted("bank-choices-spelling", "bank.jsonl",
             jsonl([{("choices" if k == "options" else k): v for k, v in r.items()} for r in BANK]), GOOD_ANSWERS),
    accepted("bank-choices-equal-to-options", "bank.json",
             json_array([{**r, "choices": r["options"]} for r in BANK]), GOOD_ANSWERS),
    accepted("bank-answer-as-index-text-letter", "bank.json",
             json_array([spoiled(BANK, 0, answer=0)[0], spoiled(BANK, 1, answer="a cathedral")[1],
                         spoiled(BANK, 2, answer="(c)")[2], spoiled(BANK, 3, answer="3")[3]]), GOOD_ANSWERS),
    accepted("bank-csv-choices-and-index", "bank.csv",
             csv_text([{"id": r["id"], "question": r["question"], "choices": r["options"],
                        "answer": str("ABCD".index(r["answer"]))} for r in BANK]), GOOD_ANSWERS),
    accepted("bank-unknown-keys-kept", "bank.jsonl", jsonl([{**r, "source_url": "https://x.org"} for r in BANK]),
             GOOD_ANSWERS),
    # -- MMAU and MMAR benchmark files --
    refused("mmau-empty", "mmau", "", NO_ITEMS),
    refused("mmau-empty-list", "mmau", "[]", NO_ITEMS),
    refused("mmau-utf16", "mmau", json_array(MMAU).encode("utf-16"), UTF16),
    refused("mmau-latin1", "mmau", latin1(json_array(MMAU)), "line 2", NOT_UTF8),
    refused("mmau-truncated", "mmau", truncated(json_array(MMAU)), "not valid JSON (line"),
    refused("mmau-choices-a-string", "mmau", json_array(spoiled(MMAU, 1, choices="piano, violin")), "m1",
            "'choices'"),
    refused("mmau-answer-a-float", "mmau", json_array(spoiled(MMAU, 1, answer=1.0)), "m1", "answer 1.0"),
    refused("mmau-id-a-list", "mmau", json_array(spoiled(MMAU, 1, id=["m1"])), "#1", "'id'", "list"),
    refused("mmau-missing-task", "mmau", json_array(spoiled(MMAU, 1, task=DROP)), "m1", "'task'"),
    refused("mmau-answer-a-letter", "mmau", json_array(spoiled(MMAU, 1, answer="B")), "m1", "answer 'B'"),
    refused("mmau-duplicate-ids", "mmau", json_array(spoiled(MMAU, 1, id="m0")), "m0", "id used by 2 items"),
    refused("mmau-clip-missing", "mmau", json_array(spoiled(MMAU, 1, audio_id="./clips/gone.wav")), "m1",
            "gone.wav", "not found"),
    accepted("mmau-repeated-question-and-unknown-keys", "mmau",
             json_array(spoiled(MMAU, 1, question=MMAU[0]["question"], difficulty="hard")), (2, ["music", "sound"])),
    refused("mmar-binary", "mmar", bytes(range(256)) * 4, NOT_UTF8),
    refused("mmar-empty-question", "mmar", json_array(spoiled(MMAR, 1, question="")), "r1", "'question'"),
    refused("mmar-jsonl-truncated", "mmar.jsonl", truncated(jsonl(MMAR)), "line 2", "not valid JSON"),
    accepted("mmar-jsonl", "mmar.jsonl", jsonl(MMAR), (2, ["mix-sound-speech", "speech"])),
    # -- caption files (the `file` captioner) --
    refused("captions-empty", "captions", "", "no caption for 2 of 2 items"),
    refused("captions-blank-lines", "captions", "\n\n", "no caption for 2 of 2 items"),
    refused("captions-utf16", "captions", jsonl(CAPTIONS).encode("utf-16"), UTF16),
    refused("captions-latin1", "captions", latin1(jsonl(CAPTIONS)), "line 2", NOT_UTF8),
    refused("captions-truncated", "captions", truncated(jsonl(CAPTIONS)), "line 2", "not valid JSON"),
    refused("captions-caption-a-number", "captions", jsonl(spoiled(CAPTIONS, 0, caption=3)), "line 1", "'caption'"),
    refused("captions-id-a-list", "captions", jsonl(spoiled(CAPTIONS, 1, id=["m1"])), "line 2", "'id'"),
    refused("captions-missing-caption", "captions", jsonl(spoiled(CAPTIONS, 1, caption=DROP)), "line 2",
            "'caption'"),
    refused("captions-empty-caption", "captions", jsonl(spoiled(CAPTIONS, 1, caption=" ")), "line 2", "empty"),
    refused("captions-duplicate", "captions", jsonl([*CAPTIONS, CAPTIONS[0]]), "line 3", "'m0'", "line 1"),
    refused("captions-unknown-item", "captions", jsonl([*CAPTIONS, {"id": "m9", "caption": "?"}]), "'m9'",
            "line 3"),
    accepted("captions-by-clip-with-unknown-keys", "captions",
             jsonl([{"audio": "m0.wav", "caption": "A dog.", "model": "gemini"}, {"id": "m1", "caption": "A violin."}]),
             {"m0": "A dog.", "m1": "A violin."}),
    # -- DeSTA-AQA5M rows (convert-desta-seeds) --
    refused("desta-empty", "desta", "", "no rows"),
    refused("desta-blank-lines", "desta", "\n \n", "no rows"),
    refused("desta-utf16", "desta", jsonl(DESTA).encode("utf-16"), UTF16),
    refused("desta-latin1", "desta", latin1(jsonl(DESTA)), "line 2", NOT_UTF8),
    refused("desta-binary", "desta", bytes(range(256)) * 4, NOT_UTF8),
    refused("desta-truncated", "desta", truncated(jsonl(DESTA)), "cannot read"),
    refused("desta-description-a-number", "desta", jsonl(spoiled(DESTA, 1, seed_description=7)), "row 2",
            "'seed_description'"),
    refused("desta-missing-dataset", "desta", jsonl(spoiled(DESTA, 1, dataset=DROP)), "row 2", "'dataset'"),
    refused("desta-clip-missing", "desta", jsonl(spoiled(DESTA, 1, id="train/clip_9.wav")), "train/clip_9.wav",
            "missing"),
    accepted("desta-repeated-row-and-unknown-keys", "desta", jsonl([*DESTA, {**DESTA[0], "split": "train"}]),
             ["AudioCaps/train/clip_0.wav", "AudioCaps/train/clip_1.wav", "AudioCaps/train/clip_0.wav@2"]),
    # -- distillation seeds (distill) --
    refused("seeds-empty", "seeds", "", "no seeds"),
    refused("seeds-utf16", "seeds", jsonl(SEEDS).encode("utf-16"), UTF16),
    refused("seeds-latin1", "seeds", latin1(jsonl(SEEDS)), "line 2", NOT_UTF8),
    refused("seeds-truncated", "seeds", truncated(jsonl(SEEDS)), "line 2", "not valid JSON"),
    refused("seeds-row-not-an-object", "seeds", jsonl([SEEDS[0], "c1"]), "line 2", "JSON object"),
    refused("seeds-description-a-number", "seeds", jsonl(spoiled(SEEDS, 0, seed_description=5)), "line 1",
            "'seed_description'"),
    refused("seeds-id-a-list", "seeds", jsonl(spoiled(SEEDS, 1, id=["c1"])), "line 2", "'id'"),
    refused("seeds-missing-audio-field", "seeds", jsonl(spoiled(SEEDS, 1, audio=DROP)), "line 2", "'audio'"),
    refused("seeds-duplicate-id", "seeds", jsonl(spoiled(SEEDS, 1, id="c0")), "line 2", "'c0'", "line 1"),
    refused("seeds-clip-missing", "seeds", jsonl(spoiled(SEEDS, 1, audio="clips/gone.wav")), "line 2", "gone.wav"),
    accepted("seeds-unknown-keys", "seeds", jsonl([{**s, "note": "hand-made"} for s in SEEDS]), ["c0#0", "c1#0"]),
    refused("seeds-json-empty-list", "seeds.json", "[]", NO_ITEMS),
    refused("seeds-json-no-summary", "seeds.json", json_array(spoiled(MMAU, 1, metadata={})), "m1",
            "metadata.summary"),
    refused("seeds-json-metadata-a-string", "seeds.json", json_array(spoiled(MMAU, 0, metadata="dog")), "m0",
            "metadata.summary"),
    accepted("seeds-json", "seeds.json", json_array(MMAU), ["m0#0", "m0#1", "m1#0", "m1#1"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_input_file(case, tmp_path, caplog, capsys):
    kind = KINDS[case.kind]
    kind.setup(tmp_path)
    file = tmp_path / kind.file
    file.write_bytes(case.content.encode() if isinstance(case.content, str) else case.content)
    out = tmp_path / "out" / "result.jsonl"
    verdict = akb_verdict(kind.argv(tmp_path, file, out), caplog, capsys)
    if case.verdict == "refused":
        verdict.refused(file, *case.names, outputs=(out, out.parent / "report.csv"))
        return
    if case.verdict == "warned":
        verdict.warned(*case.names)
    else:
        assert verdict.rc == 0, verdict.messages
    loaded = kind.loaded(out)  # the output is there in either case
    if case.loaded is not None:
        assert loaded == case.loaded


def test_the_matrix_covers_every_file_kind_and_variant():
    """The matrix keeps its breadth: every kind has cases, and each kind is refused when empty."""
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    kinds = {KINDS[c.kind].file for c in CASES}
    assert {"bank.jsonl", "bank.json", "bank.csv", "mmau-test-mini.json", "MMAR-meta.json", "captions.jsonl",
            "audio.0.jsonl", "seeds.jsonl", "train.json"} <= kinds  # fmt: skip
    for variant in ("empty", "utf16", "latin1", "truncated"):
        families = {c.id.split("-")[0] for c in CASES if variant in c.id}
        assert families >= {"bank", "mmau", "captions", "desta", "seeds"}, variant
