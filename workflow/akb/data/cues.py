"""Cue audit of a question bank: how well answering without the knowledge scores.

Each cue-only strategy looks at an item's surface alone (option lengths, numbers, wording, the
stem's words) and picks the options it favours; ties are counted fairly (an item scores 1/k when
the key is among the k options the strategy cannot tell apart, 0 otherwise), so a strategy that
cannot decide scores chance, never more. A bank is gameable when a strategy's accuracy is clearly
above chance (1/n with n options). Strategies (issue #15; all measured on the v1 bank):

- longest / shortest: the longest (shortest) option(s) by characters;
- numeric-middle: on items whose options are all numbers, the two middle values (a writer who
  hides the key among the extremes' neighbours is caught here); other items are not counted;
- no-absolute: the options without absolute words (only, never, always, ...), which writers put in
  distractors far more often than in keys;
- stem-overlap: the options sharing the most content words with the question;
- combined: the filters above in turn (numeric-middle, no-absolute, stem-overlap, longest), each
  applied only where it narrows the choice.

Letter balance per subcategory and near-duplicates (by an embedding, akb.bankgen.embed) complete
the audit; `audit_bank` returns every finding, `akb audit-bank` prints the table."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from akb.data.items import MCQItem

ABSOLUTE_WORDS = re.compile(r"\b(only|never|always|every|exactly|all|none|must|entirely|completely|solely)\b",
                            re.IGNORECASE)
NUMBER = re.compile(r"^[^\w+-]*([-+]?\d[\d,]*(?:\.\d+)?)")
# Words too common to be a cue; content words are longer than three letters and not these.
# A cue measured on fewer items is noise (with 20 items, one item moves the share 5 points).
MIN_CUE_ITEMS = 20
STOP_WORDS = frozenset(
    "the a an of to in is are and or for on by with what which how why when does do that this as at from its it "
    "be into than their his her they them there these those would could should most more less about".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z'-]+", text.lower()) if len(w) > 3 and w not in STOP_WORDS}


def _number(option: str) -> float | None:
    match = NUMBER.match(option.strip())
    return float(match.group(1).replace(",", "")) if match else None


def _extremes(values: list[float], pick: Callable) -> set[int]:
    best = pick(values)
    return {i for i, v in enumerate(values) if v == best}


def longest(item: MCQItem) -> set[int]:
    return _extremes([len(o) for o in item.choices], max)


def shortest(item: MCQItem) -> set[int]:
    return _extremes([len(o) for o in item.choices], min)


def numeric_middle(item: MCQItem) -> set[int] | None:
    """The two middle values of an all-numeric item (None: not such an item, not counted)."""
    numbers = [_number(o) for o in item.choices]
    if len(numbers) < 3 or any(n is None for n in numbers) or len(set(numbers)) < len(numbers):
        return None
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    return set(order[1:-1])


def no_absolute(item: MCQItem) -> set[int]:
    plain = {i for i, o in enumerate(item.choices) if not ABSOLUTE_WORDS.search(o)}
    return plain or set(range(len(item.choices)))


def stem_overlap(item: MCQItem) -> set[int]:
    stem = _content_words(item.question)
    return _extremes([len(stem & _content_words(o)) for o in item.choices], max)


def _best(item: MCQItem, picks: set[int], score: Callable[[str], float]) -> set[int]:
    top = max(score(item.choices[i]) for i in picks)
    return {i for i in picks if score(item.choices[i]) == top}


def combined(item: MCQItem) -> set[int]:
    """The filters in turn, each among the options still in play: the numeric middle, no absolute
    word, the most stem words, the longest: what a test-wise reader would do with every cue at once."""
    picks = numeric_middle(item) or set(range(len(item.choices)))
    picks = {i for i in picks if not ABSOLUTE_WORDS.search(item.choices[i])} or picks
    stem = _content_words(item.question)
    picks = _best(item, picks, lambda option: len(stem & _content_words(option)))
    return _best(item, picks, len)


STRATEGIES: dict[str, Callable[[MCQItem], set[int] | None]] = {
    "longest": longest, "shortest": shortest, "numeric-middle": numeric_middle, "no-absolute": no_absolute,
    "stem-overlap": stem_overlap, "combined": combined,
}


def fair_score(item: MCQItem, picks: set[int]) -> float:
    """1/k when the key is among the k picked options, else 0."""
    return 1 / len(picks) if item.choices.index(item.answer) in picks else 0.0


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (fractional successes from fair ties are allowed)."""
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass
class CueResult:
    strategy: str
    n: int  # items the strategy applies to
    accuracy: float  # percent
    low: float
    high: float
    chance: float  # percent

    @property
    def gain(self) -> float:
        return self.accuracy - self.chance


def _result(name: str, scores: list[float], chance: list[float], confidence: float) -> CueResult:
    low, high = wilson_interval(sum(scores), len(scores), confidence)
    return CueResult(name, len(scores), 100 * float(np.mean(scores)) if scores else math.nan,
                     100 * low, 100 * high, 100 * float(np.mean(chance)) if chance else math.nan)


def cue_results(items: list[MCQItem], confidence: float = 0.95,
                answered: dict[str, dict[str, bool]] | None = None) -> list[CueResult]:
    """One result per strategy; `answered` adds strategies measured elsewhere (name -> item id ->
    correct), e.g. a real model answering from the options alone (`akb audit-bank --model`)."""
    results = []
    for name, strategy in STRATEGIES.items():
        scores, chance = [], []
        for item in items:
            picks = strategy(item)
            if picks is not None:
                scores.append(fair_score(item, picks))
                chance.append(1 / len(item.choices))
        results.append(_result(name, scores, chance, confidence))
    for name, correct in (answered or {}).items():
        counted = [item for item in items if item.id in correct]
        results.append(_result(name, [float(correct[item.id]) for item in counted],
                               [1 / len(item.choices) for item in counted], confidence))
    return results


def letter_imbalance(items: list[MCQItem], tolerance: int = 1) -> list[str]:
    """Subcategories whose answer letters are not balanced: a letter more than `tolerance` items
    from an even share (n / number of options). Subcategories of fewer than two items per option
    are left out: they cannot show an imbalance that is not chance."""
    found = []
    groups: dict[tuple[str, str], list[MCQItem]] = {}
    for item in items:
        groups.setdefault((item.category, item.subcategory), []).append(item)
    for (category, sub), group in sorted(groups.items()):
        n_options = len(group[0].choices)
        if len(group) < 2 * n_options:
            continue
        counts = Counter(it.answer_letter for it in group)
        even = len(group) / n_options
        letters = "ABCDEFGHIJ"[:n_options]
        if any(abs(counts[letter] - even) > tolerance for letter in letters):
            found.append(f"{category} / {sub}: answer letters {', '.join(f'{k} {counts[k]}' for k in letters)}")
    return found


def near_duplicates(items: list[MCQItem], embed: Callable[[list[str]], np.ndarray], threshold: float
                    ) -> list[tuple[str, str, float]]:
    """Pairs of items whose question + key embeddings have cosine similarity >= `threshold`."""
    if len(items) < 2:
        return []
    vectors = np.asarray(embed([f"{it.question} {it.answer}" for it in items]), dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    similarity = vectors @ vectors.T
    i, j = np.triu_indices(len(items), k=1)
    close = similarity[i, j] >= threshold
    return [(items[a].id, items[b].id, float(similarity[a, b])) for a, b in zip(i[close], j[close])]


@dataclass
class Audit:
    cues: list[CueResult]
    unbalanced: list[str]
    duplicates: list[tuple[str, str, float]]
    max_gain: float
    failures: list[str] = field(default_factory=list)
    # Items each measured strategy (a model answering from the options alone) got right: to review.
    to_review: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {"passed": self.passed, "failures": self.failures, "max_gain": self.max_gain,
                "cues": [{**vars(r), "gain": r.gain} for r in self.cues], "unbalanced_letters": self.unbalanced,
                "near_duplicates": [{"a": a, "b": b, "cosine": s} for a, b, s in self.duplicates],
                "answered_right_without_the_question": self.to_review}

    def table(self) -> str:
        lines = [f"{'strategy':<15} {'items':>6} {'accuracy':>9} {'95% interval':>15} {'chance':>7} {'gain':>6}"]
        for r in self.cues:
            lines.append(f"{r.strategy:<15} {r.n:>6} {r.accuracy:>8.1f}% {f'{r.low:.1f}-{r.high:.1f}%':>15} "
                         f"{r.chance:>6.1f}% {r.gain:>+6.1f}")
        lines += [f"letters unbalanced: {u}" for u in self.unbalanced]
        lines += [f"near-duplicates: {a} and {b} (cosine {s:.3f})" for a, b, s in self.duplicates]
        lines.append("PASS" if self.passed else "FAIL: " + "; ".join(self.failures))
        return "\n".join(lines)


def audit_bank(items: list[MCQItem], *, max_gain: float = 4.0, letter_tolerance: int = 1,
               embed: Callable[[list[str]], np.ndarray] | None = None, duplicate_threshold: float = 0.9,
               min_items: int = MIN_CUE_ITEMS, answered: dict[str, dict[str, bool]] | None = None) -> Audit:
    """Every finding of the audit; it fails when a cue-only strategy (applied to at least
    `min_items` items; `answered` as in `cue_results`) beats chance by more than `max_gain` points, a
    subcategory's letters are unbalanced, or (with `embed`) two items are near-duplicates."""
    cues = cue_results(items, answered=answered)
    unbalanced = letter_imbalance(items, letter_tolerance)
    duplicates = near_duplicates(items, embed, duplicate_threshold) if embed else []
    to_review = {name: [i for i, right in correct.items() if right] for name, correct in (answered or {}).items()}
    audit = Audit(cues, unbalanced, duplicates, max_gain, to_review=to_review)
    audit.failures += [f"{r.strategy} scores {r.accuracy:.1f}% (chance {r.chance:.0f}%, at most +{max_gain:g})"
                       for r in cues if r.n >= min_items and r.gain > max_gain]
    if unbalanced:
        audit.failures.append(f"{len(unbalanced)} subcategories with unbalanced letters")
    if duplicates:
        audit.failures.append(f"{len(duplicates)} near-duplicate pairs")
    return audit
