"""Correlations between model-level metrics (Figure 2) and per-domain fits (Figure 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from akb.scoring.stats import percentile_interval, resample_indices

# Below three models a correlation is either undefined or trivially +-1, so it is reported as NaN.
MIN_MODELS = 3


def _defined(x: np.ndarray, y: np.ndarray) -> bool:
    # np.ptp is exact for constant inputs, where a variance can come out as rounding noise.
    return x.size >= MIN_MODELS and np.ptp(x) > 0 and np.ptp(y) > 0


def _bootstrap_r(x: np.ndarray, y: np.ndarray, n_resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile interval of r, resampling models with replacement. Resamples in which either
    metric is constant (e.g. one model drawn n times) have no r and are skipped."""
    idx = resample_indices(x.size, n_resamples, seed)
    xs, ys = x[idx], y[idx]
    keep = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    if not keep.any():
        return (float("nan"), float("nan"))
    xs = xs[keep] - xs[keep].mean(axis=1, keepdims=True)
    ys = ys[keep] - ys[keep].mean(axis=1, keepdims=True)
    r = (xs * ys).sum(axis=1) / np.sqrt((xs**2).sum(axis=1) * (ys**2).sum(axis=1))
    return percentile_interval(r, confidence)


def correlations(
    frame: pd.DataFrame, metrics: list[str] | None = None,
    n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> pd.DataFrame:
    """Pearson r between every pair of metrics (columns of `frame`, one row per model).

    Pairs come in lower-triangle order: for each metric, its pairs with the metrics before it
    (metric_a is the row of Figure 2's heatmap, metric_b the column). Each pair uses the models that
    have both metrics (pairwise complete), as the paper does: text metrics exist for 17 models,
    audio metrics for 8. With fewer than 3 such models, or a constant metric, r, p_value and the
    interval are NaN. p_value is scipy's two-sided test of r = 0; the interval is a percentile
    bootstrap over models, seeded per pair so a pair's interval does not depend on the others."""
    metrics = list(frame.columns) if metrics is None else metrics
    rows = []
    for i, metric_a in enumerate(metrics):
        for metric_b in metrics[:i]:
            both = frame[[metric_a, metric_b]].dropna()
            x, y = both[metric_a].to_numpy(float), both[metric_b].to_numpy(float)
            row = {"metric_a": metric_a, "metric_b": metric_b, "r": np.nan, "n": len(both),
                   "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
            if _defined(x, y):
                result = stats.pearsonr(x, y)
                row["r"], row["p_value"] = float(result.statistic), float(result.pvalue)
                row["ci_low"], row["ci_high"] = _bootstrap_r(x, y, n_resamples, confidence, seed)
            rows.append(row)
    return pd.DataFrame(rows, columns=["metric_a", "metric_b", "r", "n", "p_value", "ci_low", "ci_high"])


def domain_fits(points: pd.DataFrame) -> pd.DataFrame:
    """Per (benchmark, domain), in order of appearance: n, Pearson r and the least-squares line of
    audio-grounded accuracy on cascade accuracy (`grounded` = slope * `cascade` + intercept).

    r is NaN below 3 points; slope and intercept are NaN below 2 points or with constant x."""
    rows = []
    for (benchmark, domain), group in points.groupby(["benchmark", "domain"], sort=False):
        group = group.dropna(subset=["cascade", "grounded"])
        x, y = group["cascade"].to_numpy(float), group["grounded"].to_numpy(float)
        r = float(stats.pearsonr(x, y).statistic) if _defined(x, y) else np.nan
        slope = intercept = np.nan
        if x.size >= 2 and np.ptp(x) > 0:
            slope, intercept = (float(v) for v in np.polyfit(x, y, 1))
        rows.append({"benchmark": benchmark, "domain": domain, "n": int(x.size), "r": r,
                     "slope": slope, "intercept": intercept})
    return pd.DataFrame(rows, columns=["benchmark", "domain", "n", "r", "slope", "intercept"])
