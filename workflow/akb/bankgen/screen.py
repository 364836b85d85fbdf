"""Automatic checks before any human sees a candidate: format and answer validity, near-duplicates
(of the existing bank and of other candidates), and answer letters rebalanced by shuffling options.

Survivors are written as bank records (the AKB format, loadable by `akb.data.bank.load_bank`, so the
probe stage can answer them for the cross-check), each with its `rationale` and a `provenance` block."""

from __future__ import annotations

import hashlib
import logging
import random
from typing import Any

import numpy as np

from akb.bankgen.embed import Embedder
from akb.bankgen.parse import CandidateError, to_candidate
from akb.data.items import LETTERS, MCQItem

log = logging.getLogger(__name__)


def similarity_text(question: str, answer: str) -> str:
    """What two items share when they ask the same thing: the question and its correct answer."""
    return f"{question} {answer}"


def _removed(candidate: dict, check: str, reason: str) -> dict:
    return {"candidate_id": candidate.get("candidate_id"), "generator": candidate.get("generator"),
            "subcategory": candidate.get("subcategory"), "question": candidate.get("question"),
            "check": check, "reason": reason}


def near_duplicates(
    candidates: list[dict], bank: list[MCQItem], embedder: Embedder, threshold: float
) -> tuple[list[dict | None], list[dict]]:
    """For each candidate (in order): None when it is a near-duplicate (cosine similarity of
    question + answer at or above `threshold`) of a bank item or of an earlier kept candidate,
    else its nearest bank item and similarity. Also the removal records."""
    texts = [similarity_text(c["question"], c["options"][LETTERS.index(c["answer"])]) for c in candidates]
    vectors = embedder.embed(texts + [similarity_text(it.question, it.answer) for it in bank])
    cand, bank_vecs = vectors[: len(candidates)], vectors[len(candidates) :]
    to_bank = cand @ bank_vecs.T if len(bank) else np.zeros((len(candidates), 0))
    kept: list[int] = []
    nearest: list[dict | None] = []
    removed = []
    for i, c in enumerate(candidates):
        best = int(np.argmax(to_bank[i])) if len(bank) else None
        best_sim = float(to_bank[i, best]) if best is not None else 0.0
        if best is not None and best_sim >= threshold:
            removed.append(_removed(c, "near_duplicate_bank",
                                    f"near-duplicate of bank item {bank[best].id} (similarity {best_sim:.3f})"))
            nearest.append(None)
            continue
        sims = cand[kept] @ cand[i] if kept else np.zeros(0)
        if len(sims) and float(sims.max()) >= threshold:
            other = candidates[kept[int(np.argmax(sims))]]
            removed.append(_removed(c, "near_duplicate_candidate", f"near-duplicate of candidate "
                                    f"{other['candidate_id']} (similarity {float(sims.max()):.3f})"))
            nearest.append(None)
            continue
        kept.append(i)
        nearest.append({"bank_item": bank[best].id if best is not None else None, "similarity": round(best_sim, 4)})
    return nearest, removed


def balanced_letters(n_items: int, seed: int) -> list[str]:
    """A target answer letter per item: each letter ceil/floor(n/4) times, in a seeded order."""
    letters = [LETTERS[i % 4] for i in range(n_items)]
    random.Random(seed).shuffle(letters)
    return letters


def place_answer(options: list[str], answer: str, target: str, seed: str) -> tuple[list[str], list[int]]:
    """The options reordered so the correct one stands at `target`, distractors in a seeded order;
    also the original index of each new position."""
    correct = LETTERS.index(answer)
    distractors = [i for i in range(len(options)) if i != correct]
    random.Random(seed).shuffle(distractors)
    order = distractors[:]
    order.insert(LETTERS.index(target), correct)
    return [options[i] for i in order], order


def item_id(prefix: str, subcategory: str, question: str, taken: set[str]) -> str:
    base = f"{prefix}-{subcategory}-{hashlib.sha256(question.encode()).hexdigest()[:8]}"
    ident, k = base, 2
    while ident in taken:
        ident, k = f"{base}-{k}", k + 1
    taken.add(ident)
    return ident


def screen_candidates(
    candidates: list[dict[str, Any]],
    bank: list[MCQItem],
    embedder: Embedder,
    threshold: float,
    seed: int,
    prefix: str,
) -> tuple[list[dict], list[dict]]:
    """(bank records of the survivors, removal records with the check and reason)."""
    valid, removed = [], []
    for c in candidates:
        try:
            valid.append({**c, **to_candidate(c)})
        except CandidateError as e:
            removed.append(_removed(c, "format", str(e)))
    nearest, duplicates = near_duplicates(valid, bank, embedder, threshold)
    removed += duplicates
    survivors = [(c, near) for c, near in zip(valid, nearest) if near is not None]
    targets = balanced_letters(len(survivors), seed)
    records, taken = [], {it.id for it in bank}
    for (c, near), target in zip(survivors, targets):
        options, order = place_answer(c["options"], c["answer"], target, f"{seed}/{c['candidate_id']}")
        records.append({
            "id": item_id(prefix, c["subcategory"], c["question"], taken),
            "category": c["category"], "subcategory": c["subcategory"], "question": c["question"],
            "options": options, "answer": target, "rationale": c["rationale"],
            "provenance": {
                "generator": c["generator"], "prompt_version": c["prompt_version"], "request": c["request"],
                "candidate_id": c["candidate_id"], "focus": c.get("focus"), "original_answer": c["answer"],
                "option_order": order, "nearest_bank_item": near["bank_item"],
                "bank_similarity": near["similarity"], "embedding": embedder.name, "duplicate_threshold": threshold,
                "checks_passed": ["format", "answer", "near_duplicate", "letter_rebalanced"],
            },
        })  # fmt: skip
    log.info("%d candidates: %d kept, %d removed", len(candidates), len(records), len(removed))
    return records, removed
