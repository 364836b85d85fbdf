"""Statistics over per-item results: accuracy with percentile-bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: np.ndarray | list[float], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampling items with replacement)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_resamples, values.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


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
