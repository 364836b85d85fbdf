"""The one item type every benchmark is normalised to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class MCQItem:
    """A multiple-choice question with one correct choice.

    `answer` is the correct choice's text (not a letter), so items from banks that store letters,
    indices or texts compare alike. Letters are derived from the choice order.

    Audio benchmark items also carry `domain` (MMAU task, MMAR modality) and `audio` (the clip's
    path). Prompts are built from `question` and `choices` only; `extra` holds the benchmark's
    other fields, and `hidden` the answer hints some benchmarks ship (MMAR's thinking, cue,
    rubric), which must never reach a model (left out of repr so they do not leak into logs)."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str
    category: str = ""
    subcategory: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    domain: str = ""
    audio: str = ""
    hidden: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Every clip of an item that plays several (MMAU-Pro's multi-audio questions), in order; `audio`
    # is the first. Empty for a one-clip item. akb.data.audio_bench.item_audio joins them.
    clips: tuple[str, ...] = field(default=(), compare=False)

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.choices)]

    @property
    def answer_index(self) -> int:
        return self.choices.index(self.answer)

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer_index]

    def to_bank_record(self) -> dict[str, Any]:
        """The record written to a prepared bank file (AKB format: options plus answer letter)."""
        return {
            "id": self.id,
            "category": self.category,
            "subcategory": self.subcategory,
            "question": self.question,
            "options": list(self.choices),
            "answer": self.answer_letter,
            **({"extra": self.extra} if self.extra else {}),
        }
