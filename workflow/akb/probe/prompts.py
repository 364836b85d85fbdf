"""How a multiple-choice item is put to a language model.

Three conventions for generated answers (`PROMPT_STYLES`): `lettered`, the project's default (options
as "(A) text" lines, answer with a letter: one token to read, the same form for every benchmark and
bank), `desta`, the prompt DeSTA2.5-Audio's authors use for MMAU and MMAR (options quoted in one
sentence, a system prompt asking for 'The correct answer is: "..."'), to compare with their numbers,
and `glitters`, the prompt of "All That Glitters Is Not Audio" ("A: text" option lines, answer with
the option's text; no system prompt).
Log-likelihood scoring has one context for all of them (`loglik_context`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from akb.data.items import MCQItem

GENERATE_INSTRUCTION = "Answer with the letter of the correct option."
GLITTERS_INSTRUCTION = "Answer with the full option text (you may include the letter)."
GLITTERS_MMAU_PRO_INSTRUCTION = "Answer with the correct option text (you may include the letter)."
DESTA_SYSTEM_PROMPT = 'Focus on the audio clip and instruction. Put your answer in the format "The correct answer is: "___" ".'


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


def desta_question(item: MCQItem) -> str:
    """The question, then 'Choose from the following options: "a", "b" or "c"' (DeSTA2.5's MMAU/MMAR form)."""
    quoted = [f'"{choice}"' for choice in item.choices]
    options = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    return f"{item.question}\nChoose from the following options: {options}"


def glitters_question(item: MCQItem) -> str:
    """The question, 'Options:', one 'A: text' line per option in the published order, then the
    paper's instruction (its MMAU-Pro wording for MMAU-Pro items)."""
    from akb.data.audio_bench import detect_kind  # lazy: the audio stack is not needed to import prompts

    options = "\n".join(f"{letter}: {choice}" for letter, choice in zip(item.letters, item.choices))
    mmau_pro = detect_kind(item.extra) == "mmau-pro"
    instruction = GLITTERS_MMAU_PRO_INSTRUCTION if mmau_pro else GLITTERS_INSTRUCTION
    return f"{item.question}\n\nOptions:\n{options}\n\n{instruction}"


@dataclass(frozen=True)
class PromptStyle:
    """How a question is written for generation, and the system prompt that goes with it."""

    question: Callable[[MCQItem], str]
    system_prompt: str | None = None


PROMPT_STYLES = {
    "lettered": PromptStyle(lettered_question),
    "desta": PromptStyle(desta_question, DESTA_SYSTEM_PROMPT),
    "glitters": PromptStyle(glitters_question),
}


def styled_spec(spec, style: str):
    """The model's spec with the style's system prompt; a model that sets its own different one is
    an error rather than a silent choice between the two."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; one of {sorted(PROMPT_STYLES)}")
    system = PROMPT_STYLES[style].system_prompt
    if system is None or spec.chat.system_prompt == system:
        return spec
    if spec.chat.system_prompt:
        raise ValueError(f"model {spec.name}: chat.system_prompt is set, and prompt style {style!r} brings its "
                         "own; unset one of them")
    return replace(spec, chat=replace(spec.chat, system_prompt=system))
