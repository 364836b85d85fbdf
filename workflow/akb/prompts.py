"""How a multiple-choice item is put to a language model."""

from __future__ import annotations

from akb.data.items import MCQItem

GENERATE_INSTRUCTION = "Answer with the letter of the correct option."


def lettered_question(item: MCQItem, instruction: str = GENERATE_INSTRUCTION) -> str:
    """Question, then one '(A) text' line per option, then the instruction."""
    options = "\n".join(f"({letter}) {choice}" for letter, choice in zip(item.letters, item.choices))
    return f"{item.question}\n\n{options}\n\n{instruction}"


def loglik_context(item: MCQItem) -> str:
    """Context whose continuations are the option texts (the options are not listed, so each
    option is scored on its own plausibility, as in lm-evaluation-harness multiple choice)."""
    return f"Question: {item.question}\nAnswer:"


def with_description(text: str, description: str | None) -> str:
    """`text` preceded by a description of the audio clip (the cascade: a caption stands in for the
    audio); unchanged when there is no description."""
    if description is None:
        return text
    return f"Description of the audio clip: {description}\n\n{text}"
