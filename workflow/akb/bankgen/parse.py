"""Parse a generator's output into candidate questions; everything unusable gets a reason.

The format asked for is one JSON object per line with `question`, `options` (4 strings), `answer`
(a letter) and `rationale`. Parsing is lenient about the wrapping (code fences, a JSON array, prose
around the objects, an answer given as "(B)" or as the option's text, options given as {"A": ...})
and strict about the content: exactly 4 distinct, non-placeholder options and one valid answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from akb.data.items import LETTERS

N_OPTIONS = 4
# Options that are only a letter label ("A", "(b)", "Option C"): a model copying the letter list.
# (Bare numbers are real answers: "How many beats are in a bar of 4/4?")
PLACEHOLDER = re.compile(r"^\(?(?:option\s*)?[a-h]\)?[.)]?$", re.IGNORECASE)


@dataclass(frozen=True)
class Fragment:
    """A piece of output that is (or was meant to be) one JSON value."""

    text: str
    value: Any = None
    error: str | None = None  # why `text` is not a JSON value


def json_fragments(text: str) -> list[Fragment]:
    """Every top-level JSON object (or array of objects) in `text`, in order; a '{' that does not
    start valid JSON gives a fragment with the decoder's error (e.g. an output cut off mid-object)."""
    text = re.sub(r"```(?:json|jsonl)?", "\n", text)
    decoder = json.JSONDecoder()
    fragments, pos = [], 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as e:
            if text[start] == "[":  # prose like "[citation]": not an attempt at JSON
                pos = start + 1
                continue
            line_end = text.find("\n", start)
            stop = len(text) if line_end < 0 else line_end
            fragments.append(Fragment(text[start:stop], error=f"malformed JSON ({e.msg} at char {e.pos - start})"))
            pos = stop
            continue
        if isinstance(value, list):
            if not value or not all(isinstance(v, dict) for v in value):  # "[1]" in prose: not candidates
                pos = start + 1
                continue
            fragments += [Fragment(json.dumps(v, ensure_ascii=False), v) for v in value]
        else:
            fragments.append(Fragment(text[start:end], value))
        pos = end
    return fragments


class CandidateError(ValueError):
    """A JSON value that is not a usable candidate; the message is the reject reason."""


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CandidateError(f"missing or empty {field!r}")
    return " ".join(value.split())


def _options(value: Any) -> list[str]:
    if isinstance(value, dict):  # {"A": "...", "B": "..."}
        keys = [k for k in LETTERS[: len(value)] if k in value]
        if len(keys) != len(value):
            raise CandidateError(f"options keyed {sorted(value)} instead of A-D")
        value = [value[k] for k in keys]
    if not isinstance(value, list):
        raise CandidateError("'options' is not a list")
    if len(value) != N_OPTIONS:
        raise CandidateError(f"{len(value)} options instead of {N_OPTIONS}")
    options = [_text(v, "option") for v in value]
    # "(A) crescendo" -> "crescendo" when every option carries its own letter
    if all(re.match(rf"^\(?{LETTERS[i]}[).:]\s+\S", o) for i, o in enumerate(options)):
        options = [re.sub(r"^\(?[A-H][).:]\s+", "", o) for o in options]
    if any(PLACEHOLDER.match(o) for o in options):
        raise CandidateError(f"placeholder options {options}")
    if len({o.lower() for o in options}) != len(options):
        raise CandidateError("options are not distinct")
    return options


def _answer_index(value: Any, options: list[str]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        raise CandidateError(f"answer {value!r} is a number, not a letter")
    if not isinstance(value, str):
        raise CandidateError("missing 'answer'")
    text = value.strip()
    letter = re.fullmatch(r"\(?([A-Da-d])\)?\.?", text)
    if letter:
        return LETTERS.index(letter.group(1).upper())
    matches = [i for i, o in enumerate(options) if o.lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    raise CandidateError(f"answer {value!r} is neither a letter A-D nor the text of an option")


def to_candidate(value: Any) -> dict[str, Any]:
    """{question, options, answer (letter), rationale} from one JSON value, or CandidateError."""
    if not isinstance(value, dict):
        raise CandidateError(f"a JSON {type(value).__name__}, not an object")
    question = _text(value.get("question"), "question")
    options = _options(value.get("options"))
    answer = _answer_index(value.get("answer"), options)
    rationale = _text(value.get("rationale"), "rationale")
    return {"question": question, "options": options, "answer": LETTERS[answer], "rationale": rationale}


def parse_output(text: str, expected: int) -> tuple[list[dict], list[dict]]:
    """(candidates, rejects) from one output: at most `expected` candidates; each reject is
    {"reason", "text"}, and an output with nothing usable at all is one reject."""
    candidates, rejects = [], []
    fragments = json_fragments(text)
    for fragment in fragments:
        if fragment.error:
            rejects.append({"reason": fragment.error, "text": fragment.text})
            continue
        try:
            candidate = to_candidate(fragment.value)
        except CandidateError as e:
            rejects.append({"reason": str(e), "text": fragment.text})
            continue
        if len(candidates) == expected:
            rejects.append({"reason": f"more than the {expected} question(s) asked for", "text": fragment.text})
            continue
        candidates.append(candidate)
    if not fragments:
        rejects.append({"reason": "no JSON object in the output", "text": text})
    return candidates, rejects
