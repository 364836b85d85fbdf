"""Answer extraction from free-form model output, and the official MMAU/MMAR `string_match`."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reasoning blocks (Qwen3 thinking mode and similar) are removed before an answer is looked for.
THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Extraction:
    index: int | None  # chosen option, or None when the output is unparseable
    status: str  # "letter", "option_text" or "unparseable"


def strip_reasoning(text: str) -> str:
    return THINK_BLOCK.sub("", text).strip()


def _letter_patterns(letters: str) -> list[re.Pattern]:
    """Explicit letter forms, most explicit first. Only letters that exist for this item count, and
    only capitals outside a bare answer, so the article "a" in "a crescendo" is never a letter."""
    L = f"[{letters}]"
    # A letter standing alone: in parentheses, or followed by punctuation or the end of a line.
    standalone = rf"(?:\(({L})\)|({L})(?=[.,;:)]|[ \t]*$))"
    return [
        re.compile(rf"^\s*\(?({L}|{L.lower()})\)?\s*[.):]?\s*$"),  # "B", "(b)", "B."
        re.compile(rf"(?i:answer)(?:\s+(?i:is))?\s*:?\s*(?:(?i:option)\s*)?{standalone}", re.MULTILINE),
        re.compile(rf"^\s*{standalone}", re.MULTILINE),  # a line opening with "(B)" or "B." / "B)"
    ]


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def extract_choice(output: str, choices: tuple[str, ...] | list[str], letters: str) -> Extraction:
    """Map a model's free-form answer to an option, in a fixed order:

    1. an explicit letter form (the whole output a letter, "answer is B", a line opening "B)");
    2. otherwise a unique parenthesised letter "(B)" anywhere in the output;
    3. otherwise the text of exactly one option (an option whose text lies inside another matched
       option's text does not count separately);
    4. otherwise unparseable. Never a random guess."""
    text = strip_reasoning(output)
    for pattern in _letter_patterns(letters):
        match = pattern.search(text)
        if match:
            letter = next(g for g in match.groups() if g).upper()
            return Extraction(letters.index(letter), "letter")
    parenthesised = set(re.findall(rf"\(([{letters}])\)", text))
    if len(parenthesised) == 1:
        return Extraction(letters.index(parenthesised.pop()), "letter")
    said = f" {_normalise(text)} "
    words = [_normalise(c) for c in choices]
    found = [i for i, w in enumerate(words) if w and f" {w} " in said]
    maximal = [
        i for i in found
        # Whole words: "man" lies inside "woman" as letters, not as a word.
        if not any(words[j] != words[i] and f" {words[i]} " in f" {words[j]} " for j in found)
    ]
    # A repeated option (27 published MMAU items repeat one) is one answer, however often it is listed.
    if len({words[i] for i in maximal}) == 1:
        return Extraction(maximal[0], "option_text")
    return Extraction(None, "unparseable")


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\b\w+\b", text.lower()))


def string_match(answer: str, prediction: str, choices: list[str] | tuple[str, ...]) -> bool:
    """The official MMAU / MMAR rule: every answer word is in the prediction, and the prediction
    shares no word that only the wrong choices have. An empty prediction is wrong."""
    prediction_tokens = _tokens(prediction)
    if not prediction_tokens:
        return False
    answer_tokens = _tokens(answer)
    bad = set()
    for choice in choices:
        choice_tokens = _tokens(choice)
        if choice_tokens != answer_tokens:
            bad |= choice_tokens - answer_tokens
    return answer_tokens <= prediction_tokens and not (prediction_tokens & bad)
