import math

import numpy as np

from akb.scoring.stats import accuracy_summary, bootstrap_ci


def test_interval_contains_mean_and_is_deterministic():
    values = np.random.default_rng(1).random(200) < 0.7
    low, high = bootstrap_ci(values, n_resamples=500, seed=3)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, n_resamples=500, seed=3)
    assert high - low < 0.2


def test_interval_narrows_with_more_items():
    small = bootstrap_ci([1, 0] * 10, seed=0)
    large = bootstrap_ci([1, 0] * 500, seed=0)
    assert large[1] - large[0] < small[1] - small[0]


def test_constant_and_empty():
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_accuracy_summary_in_percent():
    s = accuracy_summary([True, False, True, True], n_resamples=200)
    assert s["n"] == 4 and s["correct"] == 3 and s["accuracy"] == 75.0
    assert 0 <= s["ci"][0] <= 75 <= s["ci"][1] <= 100
