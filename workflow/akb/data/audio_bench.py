"""Audio benchmarks (MMAU test-mini, MMAR, MMAU-Pro): loading and checks before any model runs
(grading by the official rule: akb.scoring.audio).

All are normalised to `MCQItem`: the answer as text, `domain` = MMAU task / MMAR modality (MMAR's
mixed modalities stay groups of their own) / MMAU-Pro category, `audio` = the clip's path, the
benchmark's other fields in `extra`, and MMAR's answer hints (thinking, cue, rubric) in `hidden`,
where no prompt looks.

MMAU-Pro (gamma-lab-umd/MMAU-Pro, `test.parquet`, 5,305 items; layout of its official
`evaluate_mmau_pro_comprehensive.py`, github.com/sonalkum/MMAUPro): `audio_path` is a list of clips
("data/<uuid>.wav"), `category` the group its scorer reports, `sub-cat` the subcategory. Its scorer
treats category "open" (LLM-judged) and "instruction following" (rule-checked) apart, and scores as
multiple choice only the other items with more than one choice: only those load here; the rest are
reported as "left_out" problems (counted, one warning), never silently dropped. A multi-audio item
keeps all its clips (`MCQItem.clips`), which `item_audio` plays one after the other with
MULTI_AUDIO_GAP_S of silence between them (models with one audio input hear every clip).

Every bad item is collected before anything stops, so one run names them all. A bad item stops the
load (on_bad_item="error"), or is dropped and returned with its problem (on_bad_item="skip"; also
logged), never silently.

Clips are checked from their headers by default (`akb.audio.audio_duration`): that every clip
exists, libsndfile can open it and it is not cut short, for a tenth of a second per 1,000 clips, where decoding reads
every sample (3 s per 1,000 ten-second 44.1 kHz WAVs from a warm local disk; far longer for long
MMAR clips or network storage), on every load. A clip with damaged samples (NaN) behind a sound header
passes and fails later, in the model's own `load_audio`, with the file named. check_audio="decode" decodes every clip
as the models will (NaN or infinite samples are errors), and also reports silent and clipped clips
(warnings: a benchmark may use silence or distortion on purpose); `akb validate-audio-benchmark
--check-audio decode` runs it.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from akb.audio import (CLIPPED_SHARE, SAMPLE_RATE, AudioError, audio_duration, is_clipped, is_silent, load_audio,
                       load_clip)
from akb.data.bank import BankError, Problem, read_records
from akb.data.formats import FORMATS, BenchmarkFormat, detect_kind  # formats: one module each in akb/data/formats/
from akb.data.items import LETTERS, MCQItem
from akb.io import outside_root

log = logging.getLogger(__name__)


MULTI_AUDIO_GAP_S = 0.5
LEFT_OUT = "left_out"  # Problem severity of an item the benchmark has but this project does not score
HIDDEN_FIELDS = ("thinking", "cue", "rubric")
MIN_CHOICES, MAX_CHOICES = 2, len(LETTERS)
CHECK_AUDIO = ("header", "decode", "none")  # none: metadata only (akb.assets.readiness counts the clips itself)
ON_BAD_ITEM = ("error", "skip")
SHOWN_PROBLEMS = 20


class _BadItem(Exception):
    def __init__(self, item_id: str, message: str):
        self.problem = Problem(item_id, message)


def _not_mcq(record: Any, fmt: BenchmarkFormat) -> str | None:
    """What a record of a format with non-multiple-choice items (MMAU-Pro: "open-ended",
    "instruction-following") is when it is no multiple-choice item, split as its official scorer
    splits them, or None."""
    if not fmt.not_mcq or not isinstance(record, dict):
        return None
    category = _text(record.get(fmt.domain_key))
    not_mcq = dict(fmt.not_mcq)
    if category in not_mcq:
        return not_mcq[category]
    choices = record.get("choices")
    # The official scorer drops these from multiple choice too (fewer than 2 choices).
    return "open-ended" if not isinstance(choices, list) or len(choices) < 2 else None


def _clip_paths(item_id: str, value: Any, fmt: BenchmarkFormat) -> list[str]:
    """The record's clip path(s), relative as published."""
    clips = value if fmt.clip_list and isinstance(value, list) else [value]
    if not clips or not all(isinstance(c, str) and c.strip() for c in clips):
        kind = "a non-empty list of paths" if fmt.clip_list else "a non-empty string"
        raise _BadItem(item_id, f"field {fmt.audio_key!r} must be {kind}, got {value!r}")
    return clips


def _text(value: Any) -> str:
    """A category as one string: some MMAU items hold a list (of one category)."""
    if isinstance(value, list):
        return "; ".join(str(v).strip() for v in value)
    return "" if value is None else str(value).strip()


def _item(record: Any, index: int, fmt: BenchmarkFormat, audio_root: Path) -> tuple[MCQItem, list[Problem]]:
    """One benchmark record as an item, with its warnings; raises _BadItem naming the first thing
    wrong with it."""
    if not isinstance(record, dict):
        raise _BadItem(f"#{index}", "record is not a JSON object")
    raw_id = record.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | None):  # a list's repr is no id
        raise _BadItem(f"#{index}", f"field 'id' must be text or an integer, got {type(raw_id).__name__}")
    item_id = "" if raw_id is None else str(raw_id).strip()
    if not item_id:
        raise _BadItem(f"#{index} (no id)", "missing field 'id'")
    missing = [k for k in ("question", "choices", "answer", fmt.audio_key, fmt.domain_key) if k not in record]
    if missing:
        raise _BadItem(item_id, f"missing field(s) {missing}")
    for key in ("question", fmt.domain_key):
        if not isinstance(record[key], str) or not record[key].strip():
            raise _BadItem(item_id, f"field {key!r} must be a non-empty string")
    clips = [str(audio_root / c) for c in _clip_paths(item_id, record[fmt.audio_key], fmt)]
    choices = record["choices"]
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise _BadItem(item_id, "field 'choices' must be a list of strings")
    # An empty option is no option (4 published MMAR items end with ""): the official rule gives it
    # no words, so dropping it changes no score, and a prompt never shows an empty letter.
    warnings = []
    if not all(c.strip() for c in choices):
        warnings.append(Problem(item_id, f"empty option(s) dropped from {choices}", "warning"))
    choices = tuple(c.strip() for c in choices if c.strip())
    # A repeated option stays, as published (27 MMAU items): the official rule scores its text.
    repeated = sorted({c for c in choices if choices.count(c) > 1})
    if repeated:
        warnings.append(Problem(item_id, f"option(s) listed twice: {repeated}", "warning"))
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        raise _BadItem(item_id, f"has {len(choices)} choices; needs {MIN_CHOICES} to {MAX_CHOICES}")
    answer = record["answer"]
    if not isinstance(answer, str) or answer.strip() not in choices:
        # Only the exact text counts: a letter or index here would be a guess at the file's intent.
        raise _BadItem(item_id, f"answer {answer!r} is not one of the choices {list(choices)}")
    # The clip's original relative path stays in `extra`, so official records reproduce it.
    core = {"id", "question", "choices", "answer", fmt.domain_key, "category", fmt.subcategory_key, *HIDDEN_FIELDS}
    item = MCQItem(
        id=item_id,
        question=record["question"].strip(),
        choices=choices,
        answer=answer.strip(),
        category=_text(record.get("category")),
        subcategory=_text(record.get(fmt.subcategory_key)),
        extra={k: v for k, v in record.items() if k not in core},
        domain=record[fmt.domain_key].strip(),
        audio=clips[0],
        hidden={k: record[k] for k in HIDDEN_FIELDS if k in record},
        clips=tuple(clips) if len(clips) > 1 else (),
    )
    return item, warnings


def _refuse_outside(item_id: str, clip: str, root: Path) -> None:
    """A clip path that leads out of the audio root is a bad item (see akb.io.outside_root)."""
    target = outside_root(root, clip)
    if target is not None:
        raise _BadItem(item_id, f"clip path {clip!r} leads outside the audio root {root} (to {target}); "
                       "set allow_outside_root: true on the benchmark's entry if that is intended")


def item_clips(item: MCQItem) -> tuple[str, ...]:
    """Every clip the item plays, in order (one for all but multi-audio items)."""
    return item.clips or (item.audio,)


def item_audio(item: MCQItem, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The item's audio as one array (akb.audio.load_audio's form; errors name the item): a
    multi-audio item's clips one after the other, MULTI_AUDIO_GAP_S of silence between them, so the
    clips stay apart to a listener. What models hear of an item: use it rather than `item.audio`."""
    clips = [load_clip(path, [item.id], sample_rate) for path in item_clips(item)]
    if len(clips) == 1:
        return clips[0]
    gap = np.zeros(int(MULTI_AUDIO_GAP_S * sample_rate), dtype=clips[0].dtype)
    joined = [part for clip in clips for part in (gap, clip)][1:]
    return np.concatenate(joined)


def _clip_problems(item_id: str, path: str, check_audio: str) -> list[Problem]:
    try:
        if check_audio == "header":
            audio_duration(path)
            return []
        audio = load_audio(path)
    except AudioError as e:
        return [Problem(item_id, str(e))]
    if is_silent(audio):
        return [Problem(item_id, f"{path}: audio is silent", "warning")]
    if is_clipped(audio):
        return [Problem(item_id, f"{path}: audio is clipped (at least {CLIPPED_SHARE:.0%} of its samples at "
                                 "full scale)", "warning")]
    return []


def _audio_problems(item: MCQItem, check_audio: str) -> list[Problem]:
    if check_audio == "none":
        return []
    return [p for path in item_clips(item) for p in _clip_problems(item.id, path, check_audio)]


def _read_parquet(path: Path) -> list[dict]:
    """Rows of a parquet file (MMAU-Pro's published test.parquet) as plain records."""
    import pyarrow.parquet as pq

    try:
        records = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as e:  # pyarrow's errors for a damaged file name no file
        raise BankError(f"{path}: cannot read as parquet: {e}") from None
    if not records:
        raise BankError(f"{path}: no items (the file holds no record)")
    return records


def _listing(problems: list[Problem]) -> str:
    shown = [f"  {p}" for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        shown.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
    return "\n".join(shown)


def load_audio_benchmark(
    path: str | Path,
    kind: str = "auto",
    audio_root: str | Path | None = None,
    on_bad_item: str = "error",
    check_audio: str = "header",
    allow_outside_root: bool = False,
) -> tuple[list[MCQItem], list[Problem]]:
    """Items of an MMAU, MMAR or MMAU-Pro file (JSON array, JSONL or parquet), checked, and the
    problems found.

    `kind` is "mmau", "mmar", "mmau-pro" or "auto" (told by the key naming the clip). MMAU-Pro items
    that are not multiple choice come back as problems of severity LEFT_OUT (see the module
    docstring). Clip paths are resolved against `audio_root` (default: the benchmark file's folder).
    Errors: a missing or malformed field, 2-8 choices, the answer among the choices, unique ids,
    clips that exist and can be read (see the module docstring for `check_audio`), inside the audio
    root (no absolute path, '..' or symlink leading out) unless `allow_outside_root`. Problems name
    the item; a raised BankError also names the file. Warnings (silent clips) never drop an item."""
    path = Path(path)
    if on_bad_item not in ON_BAD_ITEM:
        raise ValueError(f"on_bad_item must be one of {ON_BAD_ITEM}, not {on_bad_item!r}")
    if check_audio not in CHECK_AUDIO:
        raise ValueError(f"check_audio must be one of {CHECK_AUDIO}, not {check_audio!r}")
    if path.suffix.lower() == ".parquet":
        records = _read_parquet(path)
    else:
        records = read_records(str(path))  # JSON or JSONL by extension; errors name the file and line
    if kind == "auto":
        kind = next((k for r in records if isinstance(r, dict) and (k := detect_kind(r))), "")
        if not kind:
            keys = " or ".join(sorted({repr(f.audio_key) for f in FORMATS.values()}))
            raise BankError(f"{path}: cannot tell MMAU from MMAR or MMAU-Pro (no record has {keys}); set the kind")
    if kind not in FORMATS:
        raise BankError(f"{path}: unknown benchmark kind {kind!r} (one of {sorted(FORMATS)} or 'auto')")
    fmt = FORMATS[kind]
    root = path.parent if audio_root is None else Path(audio_root)

    items, problems, left_out = [], [], []
    for index, record in enumerate(records):
        kind_of = _not_mcq(record, fmt)
        if kind_of is not None:
            left_out.append(kind_of)
            problems.append(Problem(str(record.get("id", f"#{index}")), f"{kind_of} item, not multiple choice: "
                                    "not scored here", LEFT_OUT))
            continue
        try:
            item, warnings = _item(record, index, fmt, root)
            if not allow_outside_root:
                for clip in _clip_paths(item.id, record[fmt.audio_key], fmt):
                    _refuse_outside(item.id, clip, root)
            items.append(item)
            problems += warnings
        except _BadItem as bad:
            problems.append(bad.problem)
    counts = Counter(it.id for it in items)
    problems += [Problem(item_id, f"id used by {n} items") for item_id, n in counts.items() if n > 1]
    for it in items:
        if counts[it.id] == 1:  # clips of items already known bad are not worth reading
            problems += _audio_problems(it, check_audio)

    if left_out:
        tally = ", ".join(f"{n} {kind_of}" for kind_of, n in sorted(Counter(left_out).items()))
        log.warning("%s: %d item(s) left out, not multiple choice (%s); listed as %r problems", path,
                    len(left_out), tally, LEFT_OUT)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    if errors and on_bad_item == "error":
        raise BankError(f"{path}: {len(errors)} bad item(s):\n{_listing(errors)}")
    if errors:
        log.warning("%s: skipping %d bad item(s):\n%s", path, len(errors), _listing(errors))
    if warnings:
        log.warning("%s: %d warning(s):\n%s", path, len(warnings), _listing(warnings))
    # Every copy of a duplicated id goes: which one is right cannot be told.
    bad_ids = {p.item_id for p in errors}
    items = [it for it in items if it.id not in bad_ids]
    if not items:
        raise BankError(f"{path}: no usable items")
    return items, problems
