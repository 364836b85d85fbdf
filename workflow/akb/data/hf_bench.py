"""Audio benchmarks from the Hugging Face copies users meet (parquet with the audio embedded), written
out in the official layout (a metadata JSON beside one clip file per item) that every other step reads.

The copy known to differ from the official files is gamma-lab-umd/MMAU-test-mini: the question under
`instruction`, options and answer with "(A) "-style letter prefixes, the clip embedded in `context`
(mostly WAV, some MP3 bitstreams), and the official fields packed as a JSON string in
`other_attributes`. A copy already in the official fields (id, question, choices, answer, task or
modality) with an audio column reads as it is. The prefixes are removed because the official metadata
has none: with them, a model would see "A. (A) Man" and the official rule would demand the word "a".
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable

from akb.data.audio_bench import FORMATS
from akb.data.bank import HF_PREFIX, BankError
from akb.data.items import LETTERS
from akb.io import atomic_dir

log = logging.getLogger(__name__)

AUDIO_COLUMNS = ("audio", "context")
QUESTION_KEYS = ("question", "instruction")
CHOICE_KEYS = ("choices", "options")
PACKED_KEYS = ("other_attributes",)
LETTER_PREFIX = re.compile(r"^\(([A-H])\)\s*")
METADATA_NAME = "benchmark.json"
# Container signatures: a clip is written under the extension of what it really is, so decoders that
# go by the name (and people) are not misled by an MP3 stored as ".wav".
SIGNATURES = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"), (b"\xff\xfb", ".mp3"),
              (b"\xff\xf3", ".mp3"), (b"\xff\xf2", ".mp3"))


def is_hf_source(source: str, kind: str = "auto") -> bool:
    """A hub dataset id (hf://org/name) or a local parquet file or folder of parquet files, to import.
    Not MMAU-Pro's test.parquet: it holds clip paths, not audio, and is read as it is."""
    if kind == "mmau-pro":
        return False
    path = Path(source)
    return source.startswith(HF_PREFIX) or path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet")))


def _dataset(source: str, split: str):
    import datasets

    if source.startswith(HF_PREFIX):
        return datasets.load_dataset(source.removeprefix(HF_PREFIX), split=split)
    path = Path(source)
    files = sorted(map(str, path.glob("*.parquet"))) if path.is_dir() else [str(path)]
    if not files or not Path(files[0]).is_file():
        raise BankError(f"{source}: no parquet file found")
    try:
        return datasets.load_dataset("parquet", data_files=files, split="train")
    except Exception as e:  # pyarrow's errors for a damaged file name no file
        raise BankError(f"{source}: cannot read as parquet: {e}") from None


def read_hf_rows(source: str, split: str = "test") -> Iterable[dict[str, Any]]:
    """Rows of the dataset with every audio column undecoded: {"bytes": ..., "path": ...}."""
    from datasets import Audio

    data = _dataset(source, split)
    for name, feature in data.features.items():
        if isinstance(feature, Audio):
            data = data.cast_column(name, Audio(decode=False))
    return data


def _first(row: dict, keys: tuple[str, ...]):
    return next((row[k] for k in keys if k in row and row[k] is not None), None)


def _unprefixed(choices: list[str], answer: Any) -> tuple[list[str], Any]:
    """Options without their "(A) " prefixes, when each option carries its own letter in order."""
    letters = [m.group(1) if (m := LETTER_PREFIX.match(c)) else None for c in choices]
    if letters != list(LETTERS[: len(choices)]):
        return choices, answer
    if isinstance(answer, str):
        answer = LETTER_PREFIX.sub("", answer)
    return [LETTER_PREFIX.sub("", c) for c in choices], answer


def _answer_text(answer: Any, choices: list[str], where: str) -> str:
    """The answer as option text; a letter or 0-based index (as other copies store it) is mapped."""
    if isinstance(answer, str) and answer.strip() in choices:
        return answer.strip()
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in LETTERS[: len(choices)]:
        return choices[LETTERS.index(answer.strip().upper())]
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return choices[answer]
    raise BankError(f"{where}: answer {answer!r} is neither one of the choices {choices}, a letter nor an index")


def _clip_suffix(payload: bytes, path: str | None, where: str) -> str:
    for magic, suffix in SIGNATURES:
        if payload.startswith(magic):
            return suffix
    if path and Path(path).suffix:
        return Path(path).suffix.lower()
    raise BankError(f"{where}: the embedded audio is not a WAV, FLAC, Ogg or MP3 stream")


def official_record(row: dict, index: int, source: str, kind: str) -> tuple[dict, dict]:
    """(the row as an official MMAU/MMAR record without its clip path, its audio {bytes, path})."""
    record = {k: v for k, v in row.items() if k not in (*AUDIO_COLUMNS, *PACKED_KEYS, *QUESTION_KEYS, *CHOICE_KEYS)}
    for key in PACKED_KEYS:
        packed = row.get(key)
        if isinstance(packed, str) and packed.strip():
            try:
                packed = json.loads(packed)
            except json.JSONDecodeError as e:
                raise BankError(f"{source}, row {index}: field {key!r} is not valid JSON ({e.msg})") from None
        if isinstance(packed, dict):
            record = {**packed, **record}
    where = f"{source}, row {index} (id {record.get('id', '?')})"
    if record.get("id") in (None, ""):
        raise BankError(f"{source}, row {index}: no 'id' (nor one inside {PACKED_KEYS[0]!r})")
    question, choices = _first(row, QUESTION_KEYS), _first(row, CHOICE_KEYS)
    if not isinstance(question, str) or not isinstance(choices, (list, tuple)):
        raise BankError(f"{where}: needs a question ({' or '.join(QUESTION_KEYS)}) and a list of choices "
                        f"({' or '.join(CHOICE_KEYS)})")
    choices, answer = _unprefixed([str(c) for c in choices], record.get("answer"))
    record.update(question=question, choices=choices, answer=_answer_text(answer, choices, where))
    audio = _first(row, AUDIO_COLUMNS)
    if not isinstance(audio, dict) or not audio.get("bytes"):
        raise BankError(f"{where}: no embedded audio in a column named {' or '.join(AUDIO_COLUMNS)}")
    if kind == "auto":
        kind = "mmar" if "modality" in record else "mmau" if "task" in record else ""
    if kind not in FORMATS:
        raise BankError(f"{where}: cannot tell MMAU from MMAR (no 'task' or 'modality' field); set the kind")
    return {**record, "kind": kind}, audio


def export_hf_benchmark(source: str, out_dir: str | Path, split: str = "test", kind: str = "auto") -> Path:
    """Write the dataset as `out_dir/benchmark.json` (official records, the clip path under the
    official key) and `out_dir/audio/<id><ext>`; returns the metadata path. The folder appears whole
    or not at all: it is built beside the target and renamed into place."""
    out_dir = Path(out_dir)
    rows = read_hf_rows(source, split)
    if len(rows) == 0:
        raise BankError(f"{source}: split {split!r} holds no rows")
    with atomic_dir(out_dir) as building:
        (building / "audio").mkdir()
        records, seen = [], set()
        for index, row in enumerate(rows):
            record, audio = official_record(row, index, source, kind)
            found_kind = record.pop("kind")
            item_id = str(record["id"])
            if item_id in seen:
                raise BankError(f"{source}, row {index}: id {item_id!r} used by another row")
            seen.add(item_id)
            name = re.sub(r"[^A-Za-z0-9._-]", "_", item_id) + _clip_suffix(audio["bytes"], audio.get("path"), item_id)
            (building / "audio" / name).write_bytes(audio["bytes"])
            records.append({**record, FORMATS[found_kind].audio_key: f"./audio/{name}"})
            if index % 200 == 199:
                log.info("%s: %d of %d rows written", source, index + 1, len(rows))
        (building / METADATA_NAME).write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
    log.info("%s: %d items written to %s", source, len(records), out_dir)
    return out_dir / METADATA_NAME
