"""Averages over a bank's categories reweighted to another benchmark's category mix.

A bank's micro average weighs each category by its item count, so banks of equal category sizes
(this project's) and AKB-2000 (248 / 594 / 217 / 401 / 196 / 344 items: Paralinguistic alone is
30%) average the same per-category accuracies differently. `weighted_accuracy` gives the average a
bank would have with AKB-2000's mix: the category accuracies weighted by AKB-2000's sizes, with a
stratified percentile-bootstrap interval (items resampled within each category, as the weights
are fixed, not estimated)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from akb.scoring.stats import percentile_interval, resample_indices

# Category sizes that reproduce every per-category accuracy AKB-2000's paper publishes (REFERENCE.md 1).
AKB_2000_CATEGORY_SIZES = {"Sound": 248, "Paralinguistic": 594, "Phonetic": 217, "Music": 401,
                           "Audio Quality": 196, "Technical": 344}


def weighted_accuracy(rows: list[dict], weights: dict[str, float] = AKB_2000_CATEGORY_SIZES,
                      key: str = "category", field: str = "correct", n_resamples: int = 1000,
                      confidence: float = 0.95, seed: int = 0) -> dict:
    """Accuracy (percent) averaged over the categories of `weights` present in `rows`, each
    weighted by its weight (renormalised over those present), with its bootstrap interval; None
    when no category of `weights` is present (a bank with its own taxonomy)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row[key] in weights:
            groups[row[key]].append(float(row[field]))
    if not groups:
        return None
    names = sorted(groups)
    w = np.array([weights[name] for name in names], dtype=float)
    w /= w.sum()
    means = np.array([np.mean(groups[name]) for name in names])
    draws = np.stack([np.asarray(groups[name])[resample_indices(len(groups[name]), n_resamples, seed + i)].mean(axis=1)
                      for i, name in enumerate(names)])
    low, high = percentile_interval(w @ draws, confidence)
    return {"accuracy": 100 * float(w @ means), "ci": [100 * low, 100 * high],
            "categories": names, "weights": dict(zip(names, w.round(6).tolist()))}
