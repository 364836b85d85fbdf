"""Statistics over per-item results: accuracy with percentile-bootstrap confidence intervals."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def resample_indices(size: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, size) indices drawn with replacement: one bootstrap resample per row."""
    return np.random.default_rng(seed).integers(0, size, size=(n_resamples, size))


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    values: np.ndarray | list[float], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampling items with replacement)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    means = values[resample_indices(values.size, n_resamples, seed)].mean(axis=1)
    return percentile_interval(means, confidence)


def accuracy_summary(
    correct: list[bool] | np.ndarray, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """n, number correct, accuracy in percent and its bootstrap interval in percent."""
    values = np.asarray(correct, dtype=float)
    low, high = bootstrap_ci(values, n_resamples, confidence, seed)
    return {
        "n": int(values.size),
        "correct": int(values.sum()),
        "accuracy": 100 * float(values.mean()) if values.size else float("nan"),
        "ci": [100 * low, 100 * high],
    }


def grouped_accuracy(rows: list[dict], key: str, field: str = "correct", **bootstrap) -> dict[str, dict]:
    """`accuracy_summary` of `field` for each value of `key` (category, domain, ...), in first-seen order."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(bool(row[field]))
    return {name: accuracy_summary(values, **bootstrap) for name, values in groups.items()}
