"""Probe a text LLM on a multiple-choice bank, by option log-likelihood or by generation.

Items are put in a fixed order (longest first, so memory problems show up in the first batch) and
cut into fixed batches; finished batches are appended to a partial file. A restarted job skips the
batches already done and recomputes the same batches as before, so an interrupted run ends with
exactly the results of an uninterrupted one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from akb.data.items import MCQItem
from akb.io import PartialJsonl, digest
from akb.models.base import LanguageModel
from akb.probe.prompts import PROMPT_STYLES, loglik_context, with_description
from akb.scoring.answers import extract_choice

log = logging.getLogger(__name__)
MODES = ("loglik", "generate")


def length_sorted_batches(ids: list[str], lengths: list[int], size: int) -> Iterator[list[int]]:
    """Index batches of `size`, longest first (ties by id): a fixed order, so a resumed run redoes
    exactly the batches an uninterrupted one would."""
    order = sorted(range(len(ids)), key=lambda i: (-lengths[i], ids[i]))
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _record(item: MCQItem, mode: str, prompt: str) -> dict:
    return {"id": item.id, "domain": item.domain, "category": item.category, "subcategory": item.subcategory,
            "mode": mode, "answer": item.answer_letter, "prompt": prompt}


def _generate_rows(model: LanguageModel, items: list[MCQItem], prompts: list[str], max_new_tokens: int):
    outputs = model.generate(prompts, max_new_tokens)
    for item, prompt, output in zip(items, prompts, outputs):
        choice = extract_choice(output, item.choices, item.letters)
        letter = None if choice.index is None else item.letters[choice.index]
        yield _record(item, "generate", prompt) | {
            "raw_output": output,
            "parsed_answer": letter,
            "parse_status": choice.status,
            "correct": letter == item.answer_letter,
        }


def _loglik_rows(model: LanguageModel, items: list[MCQItem], prompts: list[str]):
    requests = [(p, model.continuation(c)) for item, p in zip(items, prompts) for c in item.choices]
    scores = iter(model.loglikelihood(requests))
    for item, prompt in zip(items, prompts):
        option_scores = {letter: next(scores) for letter in item.letters}
        best = max(item.letters, key=lambda k: option_scores[k].logprob)
        # Length-normalised variant: log-probability per byte of option text (lm-eval's acc_norm).
        best_norm = max(item.letters, key=lambda k: option_scores[k].logprob / max(option_scores[k].n_bytes, 1))
        yield _record(item, "loglik", prompt) | {
            "raw_output": item.choices[item.letters.index(best)],
            "parsed_answer": best,
            "parse_status": "loglik",
            "correct": best == item.answer_letter,
            "parsed_answer_norm": best_norm,
            "correct_norm": best_norm == item.answer_letter,
            "option_scores": {k: vars(v) for k, v in option_scores.items()},
        }


def probe_plan(
    model: LanguageModel,
    items: list[MCQItem],
    mode: str,
    batch_size: int,
    descriptions: dict[str, str] | None = None,
    style: str = "lettered",
) -> tuple[list[str], list[list[int]], int]:
    """The prompts of the items, the batches (indices into `items`, in run order) a probe cuts them
    into, and the items per batch (in loglik mode each item takes one sequence per option).
    `style` (akb.probe.prompts.PROMPT_STYLES) writes the question for generation."""
    described = {} if descriptions is None else descriptions
    missing = [item.id for item in items if descriptions is not None and item.id not in described]
    if missing:
        raise ValueError(f"no description for {len(missing)} item(s), e.g. {missing[:3]}")
    if mode == "generate":
        question = PROMPT_STYLES[style].question
        prompts = [model.item_prompt(item, with_description(question(item), described.get(item.id)))
                   for item in items]
        lengths = [model.token_length(p) for p in prompts]
        per_batch = batch_size
    else:
        prompts = [model.item_prompt(item, with_description(loglik_context(item), described.get(item.id)))
                   for item in items]
        lengths = [model.token_length(p) + max(model.token_length(c) for c in item.choices)
                   for item, p in zip(items, prompts)]
        per_batch = max(1, batch_size // most_choices(items))
    return prompts, list(length_sorted_batches([item.id for item in items], lengths, per_batch)), per_batch


def probe_fingerprint(model: LanguageModel, items: list[MCQItem], mode: str, max_new_tokens: int,
                      descriptions: dict[str, str] | None, errors: dict[str, str] | None, style: str,
                      inputs: dict | None = None) -> dict:
    """What a probe's rows depend on (akb.io.PartialJsonl): the batch size is left out, so a job
    rerun with a smaller one after running out of memory keeps its finished rows."""
    return {
        "model": model.spec.fingerprint(),
        "mode": mode,
        "style": style,
        "max_new_tokens": max_new_tokens if mode == "generate" else None,  # loglik generates nothing
        "items": digest([[it.id, it.question, list(it.choices), it.answer, it.category, it.subcategory, it.domain,
                          it.audio] for it in items]),
        "descriptions": None if descriptions is None else digest({it.id: descriptions.get(it.id) for it in items}),
        "errors": digest(errors or {}),
        **(inputs or {}),
    }


def most_choices(items: list[MCQItem]) -> int:
    return max((len(item.choices) for item in items), default=1)


def probe(
    model: LanguageModel,
    items: list[MCQItem],
    out_path: str | Path,
    mode: str = "generate",
    batch_size: int = 8,
    max_new_tokens: int = 32,
    descriptions: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    style: str = "lettered",
    inputs: dict | None = None,
) -> None:
    """Write one prediction row per item to `out_path`, resuming from `<out_path>.partial`.

    `batch_size` counts sequences per forward pass; in loglik mode each item contributes one
    sequence per option, so a batch holds `batch_size // n_options` items (at least one).
    `descriptions` (item id -> text) puts a description of each item's audio before its question:
    the cascade evaluation, where a caption stands in for the clip. `errors` (item id -> message)
    marks items that cannot be put to the model (e.g. a clip too short to cut): each gets a row with
    the error, counted wrong, and the model never sees it. `style` writes generated questions
    (akb.probe.prompts.PROMPT_STYLES); the model's spec should carry the style's system prompt
    (akb.probe.prompts.styled_spec). `inputs`: what else the answers depend on, for the partial file's
    fingerprint (an audio LLM's checkpoint and listening condition, see akb.io.PartialJsonl)."""
    if mode not in MODES:
        raise ValueError(f"unknown probe mode {mode!r}; one of {MODES}")
    partial = PartialJsonl(out_path, probe_fingerprint(model, items, mode, max_new_tokens, descriptions, errors,
                                                       style, inputs))
    errors = errors or {}
    partial.append(_record(item, mode, "") | {"raw_output": None, "parsed_answer": None, "parse_status": "error",
                                               "correct": False, "error": errors[item.id]}
                   for item in items if item.id in errors and not partial.done(item.id))
    all_ids = [item.id for item in items]
    items = [item for item in items if item.id not in errors]
    prompts, batches, _ = probe_plan(model, items, mode, batch_size, descriptions, style)
    done = sum(partial.done(item.id) for item in items)
    with tqdm(total=len(items), initial=done, desc=f"probe {model.spec.name}", unit="item") as bar:
        for batch in batches:
            if all(partial.done(items[i].id) for i in batch):
                continue
            batch_items = [items[i] for i in batch]
            batch_prompts = [prompts[i] for i in batch]
            if mode == "generate":
                rows = _generate_rows(model, batch_items, batch_prompts, max_new_tokens)
            else:
                rows = _loglik_rows(model, batch_items, batch_prompts)
            new = [row for row in rows if not partial.done(row["id"])]
            partial.append(new)
            bar.update(len(new))
    partial.publish(all_ids)
