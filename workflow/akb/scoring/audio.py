"""Grading audio-benchmark predictions by the official rule (MMAU, MMAR, MMAU-Pro): each output read
as an option, scored with the official string_match, summarised with bootstrap intervals, and
written back in the benchmark's own format for its official script."""

from __future__ import annotations

import re
from collections import Counter

from akb.data.audio_bench import FORMATS, detect_kind
from akb.data.items import MCQItem
from akb.scoring.answers import extract_choice, string_match, strip_reasoning
from akb.scoring.stats import accuracy_summary, grouped_accuracy


def prediction_text(item: MCQItem, output: str | None) -> tuple[str, str]:
    """The text the official rule is applied to, and how the output was read ("letter",
    "option_text", "unparseable" or "missing").

    A letter answer ("B", "(b)", "The answer is B") becomes its option's text, since the official
    string_match scores a bare letter wrong. Any other output is kept as the model said it
    (reasoning blocks and a framing 'The correct answer is:' removed, see `stated_answer`) and
    judged by string_match as the official scripts would."""
    if output is None:
        return "", "missing"
    choice = extract_choice(output, item.choices, item.letters)
    if choice.status == "letter":
        return item.choices[choice.index], "letter"
    return stated_answer(strip_reasoning(output)), choice.status


# 'The correct answer is: "X"' (DeSTA2.5's answer format) and 'The answer is X.': the opening words
# are the model's framing, not its answer; left in, the official rule counts "the" or "is" against it
# whenever a wrong option holds them (MMAR: "No, there is distortion").
STATED_ANSWER = re.compile(r'^(?:the\s+)?(?:correct\s+)?answer\s+is\s*:?\s*(?:"(?P<quoted>[^"]+)"|(?P<rest>.+))',
                           re.IGNORECASE | re.DOTALL)


def stated_answer(text: str) -> str:
    """The answer part of an output that states it ('The correct answer is: "X"' -> X), else the text."""
    match = STATED_ANSWER.match(text.strip())
    if not match:
        return text
    return match["quoted"] if match["quoted"] is not None else match["rest"].strip()


def outputs_by_id(items: list[MCQItem], rows: list[dict], output_key: str) -> dict[str, str | None]:
    """Each prediction row's output by item id; a row for an unknown item or a repeated id means the
    predictions belong to another benchmark or run, so that is an error rather than ignored."""
    ids = [str(row.get("id")) for row in rows]
    known = {it.id for it in items}
    unknown = sorted(set(ids) - known)
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if unknown or repeated:
        raise ValueError(f"predictions do not match the items: {len(unknown)} unknown id(s) "
                         f"{unknown[:5]}, {len(repeated)} repeated id(s) {repeated[:5]}")
    return {i: row.get(output_key) for i, row in zip(ids, rows)}


def grade_predictions(items: list[MCQItem], rows: list[dict], output_key: str = "raw_output") -> list[dict]:
    """One graded row per item, in item order: an item with no prediction row (or a null output)
    is "missing" and wrong, so the denominator is always every item."""
    outputs = outputs_by_id(items, rows, output_key)
    graded = []
    for it in items:
        text, status = prediction_text(it, outputs.get(it.id))
        graded.append({
            "id": it.id, "domain": it.domain, "category": it.category, "subcategory": it.subcategory,
            "answer": it.answer, "prediction": text, "parse_status": status,
            "correct": string_match(it.answer, text, it.choices),
        })
    return graded


def score_audio_predictions(
    items: list[MCQItem],
    rows: list[dict],
    output_key: str = "raw_output",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Accuracy (percent, bootstrap interval) over every item, per domain, per category and per
    subcategory, by the official rule (see `prediction_text`). Missing predictions and outputs
    naming no single option are counted; both are scored, nearly always wrong, never dropped."""
    if not items:
        raise ValueError("no items to score")
    return summarise_graded(grade_predictions(items, rows, output_key), n_resamples, confidence, seed)


def summarise_graded(graded: list[dict], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """The scores JSON of graded rows (`grade_predictions`' form): accuracy overall and per domain,
    category and subcategory, and the count of missing and unparseable outputs."""
    bootstrap = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    statuses = Counter(r["parse_status"] for r in graded)
    return {
        **accuracy_summary([r["correct"] for r in graded], **bootstrap),
        "confidence": confidence,
        "missing": statuses["missing"],
        "unparseable": statuses["unparseable"],
        "by_domain": grouped_accuracy(graded, "domain", "correct", **bootstrap),
        "by_category": grouped_accuracy(graded, "category", "correct", **bootstrap),
        "by_subcategory": grouped_accuracy(graded, "subcategory", "correct", **bootstrap),
    }


def official_predictions(
    items: list[MCQItem], rows: list[dict], kind: str = "auto", output_key: str = "raw_output"
) -> list[dict]:
    """The benchmark's own records, one per item in item order, with the answer under the key the
    official script reads (MMAU and MMAU-Pro: model_output, MMAR: answer_prediction), so it can be run on them.

    The answer written is `prediction_text`'s (a letter mapped to its option), so the official
    script's accuracy equals `score_audio_predictions`'. An item without a prediction gets "" (wrong)
    rather than no key, which the official scripts would skip, shrinking their denominator. The
    answer hints in `hidden` are left out; `category` is written as normalised (a string)."""
    if not items:
        return []
    if kind == "auto":
        kind = detect_kind(items[0].extra) or ""
    if kind not in FORMATS:
        raise ValueError(f"unknown benchmark kind {kind!r}: one of {sorted(FORMATS)}, or 'auto' for "
                         "items loaded by load_audio_benchmark")
    fmt = FORMATS[kind]
    return [
        {"id": it.id, "question": it.question, "choices": list(it.choices), "answer": it.answer,
         fmt.domain_key: it.domain, "category": it.category, fmt.subcategory_key: it.subcategory,
         **it.extra, fmt.prediction_key: row["prediction"]}
        for it, row in zip(items, grade_predictions(items, rows, output_key))
    ]
