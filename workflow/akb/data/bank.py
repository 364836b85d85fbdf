"""Load and validate multiple-choice question banks (our original bank, AKB-2000, or any MCQ set).

A bank is read from JSON (an array of objects), JSONL, CSV or a Hugging Face dataset id
(`hf://org/name`), with a column mapping for files whose field names differ from the AKB format:

    {"id": "...", "category": "Music", "subcategory": "tempo_dynamics",
     "question": "...", "options": ["...", "...", "...", "..."], "answer": "B"}

The options may also be spelled `choices` (as MMAU, MMAR, lm-evaluation-harness and most Hugging
Face MCQ sets do) without a mapping; a record with both, differing, is refused. `answer` may be a
letter, a 0-based index, or the correct option's text (a one-letter answer is read as a letter; a
number that is both an option's text and another option's index is refused as ambiguous). Other
fields are kept, unchecked, in the item's `extra` (and in a prepared bank). Files are UTF-8 (a
byte-order mark is allowed); a file without any item is an error.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from akb import DATA_DIR
from akb.io import parse_json, read_jsonl, read_text
from akb.data.cues import MIN_CUE_ITEMS, fair_score, longest, shortest
from akb.data.items import LETTERS, MCQItem

# The banks that ship with the study, by name: `builtin` is the current version; earlier versions
# keep their names so earlier results stay reproducible (docs/question-bank.md).
BUILTIN_BANKS = {"builtin-v1": DATA_DIR / "banks" / "akb-v1.jsonl", "builtin-v2": DATA_DIR / "banks" / "akb-v2.jsonl"}
BUILTIN_BANKS["builtin"] = BUILTIN_BANKS["builtin-v2"]
TAXONOMY = DATA_DIR / "akb_taxonomy.yaml"
HF_PREFIX = "hf://"
DEFAULT_COLUMNS = {
    "id": "id",
    "question": "question",
    "options": "options",
    "answer": "answer",
    "category": "category",
    "subcategory": "subcategory",
}
OPTION_SPELLINGS = ("options", "choices")  # accepted without a mapping; see _options_field


class BankError(ValueError):
    """A bank file that cannot be used; the message names the file, item and field."""


def resolve_source(source: str) -> str:
    """`builtin` (the current shipped bank, v2), `builtin-v1` or `builtin-v2` name the study's own
    banks; anything else is a path or id."""
    return str(BUILTIN_BANKS[source]) if source in BUILTIN_BANKS else source


def taxonomy_categories() -> list[str]:
    """The six AKB categories in the paper's order (Table 1 columns)."""
    return [c["name"] for c in yaml.safe_load(TAXONOMY.read_text(encoding="utf-8"))["categories"]]


def detect_format(source: str) -> str:
    if source.startswith(HF_PREFIX):
        return "hf"
    suffix = Path(source).suffix.lower()
    formats = {".json": "json", ".jsonl": "jsonl", ".csv": "csv"}
    if suffix not in formats:
        raise BankError(f"{source}: cannot tell the format from the extension; set bank.format")
    return formats[suffix]


def read_records(source: str, fmt: str = "auto", split: str = "test") -> list[dict[str, Any]]:
    """Raw records of a bank, before column mapping. A source without any record is an error: a
    run over it would score nothing and look finished."""
    fmt = detect_format(source) if fmt == "auto" else fmt
    if fmt == "hf":
        records = _read_hf(source.removeprefix(HF_PREFIX), split)
        if not records:
            raise BankError(f"{source}: no items in split {split!r}")
        return records
    path = Path(source)
    if not path.is_file():
        raise BankError(f"{source}: bank file not found")
    if fmt not in ("jsonl", "json", "csv"):
        raise BankError(f"{source}: unknown bank format {fmt!r} (json, jsonl, csv or hf)")
    try:  # akb.io's readers name the file and line of a syntax or text-encoding error
        records = {"jsonl": read_jsonl, "json": _read_json, "csv": _read_csv}[fmt](path)
    except ValueError as e:
        raise BankError(str(e)) from None
    if fmt == "json" and not isinstance(records, list):
        raise BankError(f"{source}: expected a JSON array of question objects")
    if not records:
        raise BankError(f"{source}: no items (the file holds no record)")
    return records


def _read_json(path: Path) -> Any:
    """A JSON bank's content; a blank file has no records (rather than a JSON syntax error)."""
    text = read_text(path)
    return parse_json(text, path) if text.strip() else []


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV file as text; a file without any line has no records (not a parser error)."""
    import pandas as pd

    text = read_text(path)
    if not text.strip():
        return []
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:  # pandas names the line but not the file
        raise ValueError(f"{path}: not valid CSV ({str(e).strip()})") from None
    return frame.to_dict(orient="records")


def _read_hf(dataset_id: str, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise BankError(
            f"hf://{dataset_id}: reading a Hugging Face dataset needs the 'hub' extra "
            "(pip install -e '.[hub]')"
        ) from None
    return [dict(row) for row in datasets.load_dataset(dataset_id, split=split)]


def _options(record: dict, spec: str | list[str], where: str) -> tuple[str, ...]:
    if isinstance(spec, list):  # one column per option, e.g. CSV columns A, B, C, D
        missing = [c for c in spec if c not in record]
        if missing:
            raise BankError(f"{where}: missing option column(s) {missing}")
        values = [record[c] for c in spec]
    else:
        if spec not in record:
            raise BankError(f"{where}: missing field {spec!r}")
        values = record[spec]
        if isinstance(values, str):  # a CSV cell holding a JSON list
            try:
                values = json.loads(values)
            except json.JSONDecodeError:
                raise BankError(f"{where}: field {spec!r} is neither a list nor a JSON list") from None
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise BankError(f"{where}: options must be a list of strings")
    options = tuple(v.strip() for v in values if v.strip())
    if len(options) < 2:
        raise BankError(f"{where}: needs at least 2 non-empty options, got {len(options)}")
    return options


def _answer_text(raw: Any, options: tuple[str, ...], where: str) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw < len(options):
            return options[raw]
    elif isinstance(raw, str):
        text = raw.strip()
        letter = re.fullmatch(r"\(?([A-Ha-h])\)?", text)
        if letter and LETTERS.index(letter.group(1).upper()) < len(options):
            return options[LETTERS.index(letter.group(1).upper())]
        index = options[int(text)] if text.isdecimal() and int(text) < len(options) else None
        if index is not None and text in options and index != text:
            # Options that are numbers, and an answer that is one of them and an index of another
            # (a CSV holds both as text): either reading would silently score every model wrong.
            raise BankError(f"{where}: answer {raw!r} is ambiguous: the text of one option and the index of "
                            f"another ({index!r}); write the answer as a letter")
        if index is not None:
            return index
        if text in options:
            return text
    raise BankError(f"{where}: answer {raw!r} is not a letter, index or text of one of the options")


def normalise_records(
    records: list[dict[str, Any]], source: str, columns: dict[str, Any] | None = None
) -> list[MCQItem]:
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    items = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BankError(f"{source}: record #{index} is not an object")
        item_id = _label(record, cols["id"], f"{source}: item #{index}")
        where = f"{source}: item {item_id or f'#{index} (no id)'}"
        if not item_id:
            raise BankError(f"{where}: missing field {cols['id']!r}")
        question = record.get(cols["question"])
        if question is not None and not isinstance(question, str):
            raise BankError(f"{where}: field {cols['question']!r} must be text, got {type(question).__name__}")
        if not question or not question.strip():
            raise BankError(f"{where}: missing or empty field {cols['question']!r}")
        if cols["answer"] not in record:
            raise BankError(f"{where}: missing field {cols['answer']!r}")
        mapped = "options" in (columns or {})
        options_spec = cols["options"] if mapped else _options_field(record, where)
        options = _options(record, options_spec, where)
        answer = _answer_text(record[cols["answer"]], options, where)
        known = {cols[k] for k in ("id", "question", "answer", "category", "subcategory")}
        if isinstance(options_spec, list):
            known |= set(options_spec)
        else:
            known |= {options_spec} if mapped else set(OPTION_SPELLINGS)
        extra = record.get("extra") or {}
        if not isinstance(extra, dict):
            raise BankError(f"{where}: field 'extra' must be an object, got {type(extra).__name__}")
        items.append(
            MCQItem(
                id=item_id,
                question=question.strip(),
                choices=options,
                answer=answer,
                category=_label(record, cols["category"], where),
                subcategory=_label(record, cols["subcategory"], where),
                extra={k: v for k, v in record.items() if k not in known and k != "extra"} | extra,
            )
        )
    return items


def _label(record: dict, key: str, where: str) -> str:
    """An id, category or subcategory as stripped text ("" when absent). Integers are taken as
    written (Hugging Face datasets and JSON files number their items); a list or an object is
    refused, as its repr would silently become the id or the category."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BankError(f"{where}: field {key!r} must be text or an integer, got {type(value).__name__}")
    return str(value).strip()


def _options_field(record: dict, where: str) -> str:
    """The field holding the options when the column mapping names none: `options` (the AKB
    format) or `choices` (MMAU, MMAR, lm-evaluation-harness and most Hugging Face MCQ sets), so
    those need no mapping. Both, with different contents, cannot be told apart."""
    present = [k for k in OPTION_SPELLINGS if k in record]
    if len(present) > 1 and record["options"] != record["choices"]:
        raise BankError(f"{where}: fields 'options' and 'choices' differ; keep one, or name the one to use "
                        "in the column mapping (bank.columns.options)")
    return present[0] if present else DEFAULT_COLUMNS["options"]


def load_bank(
    source: str, fmt: str = "auto", columns: dict[str, Any] | None = None, split: str = "test"
) -> list[MCQItem]:
    """Load a bank and check what every consumer relies on (ids unique, answers valid)."""
    source = resolve_source(source)
    items = normalise_records(read_records(source, fmt, split), source, columns)
    errors = find_errors(items)
    if errors:
        shown = "\n".join(f"  {p}" for p in errors[:20])
        raise BankError(f"{source}: {len(errors)} problem(s):\n{shown}")
    return items


@dataclass(frozen=True)
class Problem:
    item_id: str
    message: str
    severity: str = "error"  # "error": unusable; "warning": usable but below the bank's standard

    def __str__(self) -> str:
        return f"{self.severity}: {self.item_id}: {self.message}"


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower()))


def find_errors(items: list[MCQItem], n_options: int | None = None) -> list[Problem]:
    """What makes a bank unusable: duplicate ids, repeated options, a wrong option count (when
    `n_options` is given). Linear in the bank size: checked on every load."""
    problems = [
        Problem(item_id, f"id used by {count} items")
        for item_id, count in Counter(it.id for it in items).items()
        if count > 1
    ]
    for it in items:
        if len(set(o.lower() for o in it.choices)) != len(it.choices):
            problems.append(Problem(it.id, "options are not distinct"))
        if n_options is not None and len(it.choices) != n_options:
            problems.append(Problem(it.id, f"has {len(it.choices)} options, expected {n_options}"))
    return problems


def find_warnings(
    items: list[MCQItem],
    letter_margin: float = 0.05,
    length_cue_margin: float = 0.10,
    duplicate_jaccard: float = 0.8,
) -> list[Problem]:
    """What falls short of a well-made bank, where every item has the same number of options n:
    a correct-answer letter whose share of items is more than `letter_margin` from chance (1/n:
    20-30% with 4 options); a length cue, where picking the longest, or the shortest, option (ties
    shared) scores more than `length_cue_margin` from chance, so option length alone would score
    (measured on at least MIN_CUE_ITEMS items; the full cue audit is `akb audit-bank`); the same question under two ids; and near-duplicate questions (Jaccard
    similarity of the words of question + answer at or above `duplicate_jaccard`)."""
    problems = []
    counts = {len(it.choices) for it in items}
    if len(counts) == 1:
        n = counts.pop()
        letters = Counter(it.answer_letter for it in items)
        low, high = 1 / n - letter_margin, 1 / n + letter_margin
        for letter in LETTERS[:n]:
            share = letters[letter] / len(items)
            if not low - 1e-9 <= share <= high + 1e-9:
                problems.append(Problem(f"letter {letter}", f"is the answer of {share:.1%} of items "
                                        f"(expected {low:.0%}-{high:.0%})", "warning"))
        for pick, word in ((longest, "longest"), (shortest, "shortest")) if len(items) >= MIN_CUE_ITEMS else ():
            # Ties shared fairly (akb.data.cues): all-equal options score chance, never a cue.
            share = sum(fair_score(it, pick(it)) for it in items) / len(items)
            if abs(share - 1 / n) > length_cue_margin:
                problems.append(Problem("length cue", f"picking the {word} option scores {share:.1%} "
                                        f"(ties shared; chance {1 / n:.0%})", "warning"))
    # The same question under two ids is most often a copy-paste slip, reported whatever the
    # answers; a warning, not an error, as a bank may ask one question over other option sets.
    signatures = [(it, _words(f"{it.question} {it.answer}"), _plain(it.question)) for it in items]
    for i, (a, words_a, question_a) in enumerate(signatures):
        for b, words_b, question_b in signatures[i + 1 :]:
            union = len(words_a | words_b)
            if question_a == question_b:
                same = " and options" if sorted(map(_plain, a.choices)) == sorted(map(_plain, b.choices)) else ""
                problems.append(Problem(a.id, f"same question{same} as {b.id}", "warning"))
            elif union and len(words_a & words_b) / union >= duplicate_jaccard:
                problems.append(Problem(a.id, f"near-duplicate of {b.id}", "warning"))
    return problems


def _plain(text: str) -> str:
    """Text compared for sameness: case and runs of white space do not count."""
    return " ".join(text.lower().split())


def check_items(items: list[MCQItem], n_options: int | None = None) -> list[Problem]:
    """Every problem of a bank: errors first, then warnings."""
    return find_errors(items, n_options) + find_warnings(items)
