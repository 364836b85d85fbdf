"""Dose-response analysis: each variant's per-item correctness in every evaluation, grouped into the
families the corpus trained on, those it held out and the rest; accuracy per dose with intervals,
the slope over dose and the top dose against the control, both by a paired bootstrap over items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from akb.knowledge_dose.corpus import HELD_OUT, TRAIN, CorpusRow, families
from akb.knowledge_dose.variants import Variant
from akb.scoring.stats import percentile_interval, resample_indices

# Evaluation -> (label, the corpus scope whose families it is grouped by)
EVALUATIONS = {
    "probe": ("Probe (bank)", "bank"),
    "cascade": ("Cascade (captions)", "synthetic"),
    "audio": ("Audio LLM, with audio", "synthetic"),
    "no_audio": ("Audio LLM, no audio", "synthetic"),
}
GROUPS = {TRAIN: "trained families", HELD_OUT: "held-out families", "other": "not in the corpus", "all": "all items"}


@dataclass(frozen=True)
class Effect:
    estimate: float  # percentage points
    low: float
    high: float
    p: float  # two-sided bootstrap p-value

    @property
    def distinguishable(self) -> bool:
        return not self.low <= 0 <= self.high


def group_of(subcategory: str, split_of: dict[str, str]) -> str:
    return split_of.get(subcategory, "other")


def correctness(graded: dict[str, dict[str, list[dict]]], corpus: list[CorpusRow]) -> pd.DataFrame:
    """One row per (variant, evaluation, item): its family, group and whether it was answered right.
    `graded`: variant -> evaluation -> graded rows (id, subcategory, correct)."""
    records = []
    for variant, by_eval in graded.items():
        for evaluation, rows in by_eval.items():
            scope = EVALUATIONS[evaluation][1]
            split_of = {f: s for s in (TRAIN, HELD_OUT) for f in families(corpus, scope, s)}
            records += [{"variant": variant, "evaluation": evaluation, "id": r["id"], "family": r["subcategory"],
                         "group": group_of(r["subcategory"], split_of), "correct": bool(r["correct"])} for r in rows]
    return pd.DataFrame.from_records(records)


def _matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(variants, items) correctness, the items aligned across variants (every variant answers the same ones)."""
    table = frame.pivot(index="id", columns="variant", values="correct")
    missing = [n for n in names if n not in table.columns]
    if missing or table.isna().any().any():
        raise ValueError(f"variants {missing or list(table.columns[table.isna().any()])} did not answer the same items")
    return table[names].to_numpy(dtype=float).T


def dose_levels(variants: list[Variant]) -> dict[int, list[str]]:
    levels: dict[int, list[str]] = {}
    for v in variants:
        if not v.control:
            levels.setdefault(v.dose, []).append(v.name)
    return dict(sorted(levels.items()))


def _slope(doses: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """OLS slope of accuracy (last axis: one value per dose) on dose as a fraction: points per 100%."""
    x = doses / 100 - (doses / 100).mean()
    return (accuracy - accuracy.mean(axis=-1, keepdims=True)) @ x / (x @ x)


def _effect(point: float, samples: np.ndarray, confidence: float) -> Effect:
    low, high = percentile_interval(samples, confidence)
    p = min(1.0, 2 * min((samples <= 0).mean(), (samples >= 0).mean()))
    return Effect(point, low, high, float(p))


def dose_response(frame: pd.DataFrame, variants: list[Variant], n_resamples: int, seed: int,
                  confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy per (evaluation, group, variant) with percentile intervals, and per (evaluation,
    group) the slope over dose and the top dose minus the control. Seeds of one dose are averaged
    item by item; every statistic's resamples draw the same items for every variant (paired)."""
    levels = dose_levels(variants)
    doses = np.array(list(levels), dtype=float)
    controls = [v.name for v in variants if v.control]
    names = [v.name for v in variants]
    accuracy_rows, effect_rows = [], []
    for (evaluation, group), part in _groups(frame):
        matrix = _matrix(part, names)  # (variants, items)
        index = resample_indices(matrix.shape[1], n_resamples, seed)
        resampled = matrix[:, index].mean(axis=2) * 100  # (variants, resamples)
        point = matrix.mean(axis=1) * 100
        for i, v in enumerate(variants):
            low, high = percentile_interval(resampled[i], confidence)
            accuracy_rows.append({"evaluation": evaluation, "group": group, "variant": v.name,
                                  "dose": "control" if v.control else v.dose, "seed": v.seed, "n": matrix.shape[1],
                                  "accuracy": point[i], "ci_low": low, "ci_high": high})
        by_dose = np.stack([resampled[[names.index(n) for n in levels[d]]].mean(axis=0) for d in levels])
        point_by_dose = np.array([point[[names.index(n) for n in levels[d]]].mean() for d in levels])
        slope = _effect(float(_slope(doses, point_by_dose)), _slope(doses, by_dose.T), confidence)
        row = {"evaluation": evaluation, "group": group, "n": matrix.shape[1],
               **{f"accuracy_dose{int(d)}": a for d, a in zip(doses, point_by_dose)},
               "slope": slope.estimate, "slope_low": slope.low, "slope_high": slope.high, "slope_p": slope.p}
        if controls:
            control_point = point[[names.index(n) for n in controls]].mean()
            control_samples = resampled[[names.index(n) for n in controls]].mean(axis=0)
            versus = _effect(float(point_by_dose[-1] - control_point), by_dose[-1] - control_samples, confidence)
            row |= {"accuracy_control": control_point, "top_minus_control": versus.estimate,
                    "top_minus_control_low": versus.low, "top_minus_control_high": versus.high,
                    "top_minus_control_p": versus.p}
        effect_rows.append(row)
    return pd.DataFrame(accuracy_rows), pd.DataFrame(effect_rows)


def _groups(frame: pd.DataFrame):
    """(evaluation, group) parts in a fixed order, "all" being every item of the evaluation."""
    for evaluation in EVALUATIONS:
        rows = frame[frame["evaluation"] == evaluation]
        if rows.empty:
            continue
        for group in GROUPS:
            part = rows if group == "all" else rows[rows["group"] == group]
            if not part.empty:
                yield (evaluation, group), part


def family_accuracy(frame: pd.DataFrame, variants: list[Variant]) -> pd.DataFrame:
    """Accuracy per (evaluation, family, variant): the per-family view behind the groups."""
    order = {v.name: i for i, v in enumerate(variants)}
    table = (frame.groupby(["evaluation", "group", "family", "variant"])["correct"].agg(["size", "mean"])
             .reset_index().rename(columns={"size": "n", "mean": "accuracy"}))
    table["accuracy"] *= 100
    table["order"] = table["variant"].map(order)
    return table.sort_values(["evaluation", "group", "family", "order"]).drop(columns="order")
