"""The knowledge corpus: auditory facts (plain sentences and short question-answer pairs) in
families, each family either trained on or held out, and a non-auditory control corpus of the same
style; the rows each variant trains on, and how a row becomes training text."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akb import DATA_DIR
from akb.io import iter_jsonl

BUILTIN = DATA_DIR / "knowledge"
AUDITORY_GLOB = "auditory-*.jsonl"
CONTROL_FILE = "control.jsonl"
SCOPES = ("synthetic", "bank", "control")  # synthetic-suite families, bank subcategories, control topics
TRAIN, HELD_OUT, CONTROL = "train", "held_out", "control"
KINDS = {"fact": ("text",), "qa": ("question", "answer")}


@dataclass(frozen=True)
class CorpusRow:
    id: str
    family: str
    scope: str
    split: str
    kind: str
    text: str = ""
    question: str = ""
    answer: str = ""


def corpus_dir(source: str) -> Path:
    return BUILTIN if source == "builtin" else Path(source)


def _row(path: Path, line_no: int, data, control: bool) -> CorpusRow:
    where = f"{path}, line {line_no}"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a row is a JSON object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {sorted(KINDS)}, not {kind!r}")
    for key in ("id", "family", "scope", "split", *KINDS[kind]):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"{where}: {key!r} must be a non-empty string")
    splits = (CONTROL,) if control else (TRAIN, HELD_OUT)
    if data["split"] not in splits:
        raise ValueError(f"{where}: split must be one of {list(splits)} in this file, not {data['split']!r}")
    if data["scope"] not in SCOPES or (data["scope"] == CONTROL) != control:
        raise ValueError(f"{where}: scope must be {'control' if control else 'synthetic or bank'}, "
                         f"not {data['scope']!r}")
    return CorpusRow(**{k: data[k].strip() for k in ("id", "family", "scope", "split", "kind", *KINDS[kind])})


def load_corpus(directory: str | Path) -> list[CorpusRow]:
    """Every row of the auditory files and the control file, checked: unique ids, one split per
    family, at least one trained family and some control rows."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: knowledge corpus folder not found")
    auditory = sorted(directory.glob(AUDITORY_GLOB))
    if not auditory:
        raise FileNotFoundError(f"{directory}: no {AUDITORY_GLOB} file")
    control = directory / CONTROL_FILE
    if not control.is_file():
        raise FileNotFoundError(f"{control}: control corpus not found")
    rows: list[CorpusRow] = []
    for path in [*auditory, control]:
        records = list(iter_jsonl(path))  # a malformed line is named by file and line
        if not records:
            raise ValueError(f"{path}: empty corpus file")
        rows += [_row(path, i, data, path == control) for i, data in records]
    seen: dict[str, str] = {}
    split_of: dict[tuple[str, str], str] = {}
    for row in rows:
        if row.id in seen:
            raise ValueError(f"{directory}: row id {row.id!r} is used twice")
        seen[row.id] = row.family
        key = (row.scope, row.family)
        if split_of.setdefault(key, row.split) != row.split:
            raise ValueError(f"{directory}: family {row.family!r} ({row.scope}) has rows in both splits "
                             f"{split_of[key]!r} and {row.split!r} (row {row.id}); a family is trained on or held out as a whole")
    if not any(r.split == TRAIN for r in rows):
        raise ValueError(f"{directory}: no family has split 'train'")
    return rows


def families(rows: list[CorpusRow], scope: str, split: str) -> list[str]:
    """The families of one scope in one split, in file order."""
    return list(dict.fromkeys(r.family for r in rows if r.scope == scope and r.split == split))


def _shuffled(rows: list[CorpusRow], seed: int, key: str) -> list[CorpusRow]:
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return [rows[i] for i in rng.permutation(len(rows))]


def dose_rows(rows: list[CorpusRow], dose: int, seed: int) -> list[CorpusRow]:
    """`dose` percent of each trained family's rows, drawn by `seed`. Nested: with one seed, the 25%
    rows are among the 50% ones, so a larger dose only adds facts."""
    chosen = []
    for family in dict.fromkeys((r.scope, r.family) for r in rows if r.split == TRAIN):
        own = [r for r in rows if (r.scope, r.family) == family]
        chosen += _shuffled(own, seed, "/".join(family))[: round(len(own) * dose / 100)]
    return chosen


def control_rows(rows: list[CorpusRow], seed: int) -> list[CorpusRow]:
    """As many control rows as the 100% dose trains on, drawn by `seed`: the same amount of
    training, without the auditory content."""
    wanted = len(dose_rows(rows, 100, seed))
    control = [r for r in rows if r.split == CONTROL]
    if len(control) < wanted:
        raise ValueError(f"the control corpus has {len(control)} rows; it needs as many as the training facts ({wanted})")
    return _shuffled(control, seed, CONTROL)[:wanted]


def training_text(row: CorpusRow) -> str:
    """A fact as written; a question-answer pair in the 'Question: / Answer:' frame the probe's
    prompts use (no chat template: its system prompt would double the tokens trained on)."""
    if row.kind == "fact":
        return row.text
    return f"Question: {row.question}\nAnswer: {row.answer}"
