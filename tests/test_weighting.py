"""Table 1's AKB-2000-weighted average and the subcategory table with its noise verdict (#15 part 4)."""

import numpy as np
import pytest

from akb.scoring.probe import probe_table, score_predictions, subcategory_table, table_display
from akb.scoring.weighting import AKB_2000_CATEGORY_SIZES, weighted_accuracy


def rows(per_category: dict[str, tuple[int, int]], sub: str = "s") -> list[dict]:
    """`correct` of n items per category: category -> (n, correct)."""
    out = []
    for category, (n, correct) in per_category.items():
        out += [{"id": f"{category}-{i}", "category": category, "subcategory": f"{category}-{sub}", "mode": "loglik",
                 "correct": i < correct, "correct_norm": False, "parse_status": "ok"} for i in range(n)]
    return out


def test_on_akb_2000_itself_the_weighted_average_is_the_micro_average():
    # Category sizes in AKB-2000's proportions (halved), accuracies differing by category.
    sizes = {c: n // 2 for c, n in AKB_2000_CATEGORY_SIZES.items()}
    data = rows({c: (n, n * (k + 2) // 10) for k, (c, n) in enumerate(sizes.items())})
    weighted = weighted_accuracy(data)
    micro = 100 * np.mean([r["correct"] for r in data])
    assert weighted["accuracy"] == pytest.approx(micro, abs=0.3)  # halving rounds two sizes down


def test_an_equal_size_bank_is_reweighted_to_akb_2000s_mix():
    # Paralinguistic (594 of 2000 in AKB-2000) right every time, everything else never.
    data = rows({c: (20, 20 if c == "Paralinguistic" else 0) for c in AKB_2000_CATEGORY_SIZES})
    weighted = weighted_accuracy(data, n_resamples=200)
    assert 100 * np.mean([r["correct"] for r in data]) == pytest.approx(100 / 6)
    assert weighted["accuracy"] == pytest.approx(100 * 594 / 2000)
    low, high = weighted["ci"]
    assert low == pytest.approx(high) == pytest.approx(weighted["accuracy"])  # no within-category variance


def test_a_bank_of_other_categories_has_no_weighted_average():
    assert weighted_accuracy(rows({"Birdsong": (10, 5)})) is None
    assert score_predictions(rows({"Birdsong": (10, 5)}), n_resamples=50)["akb_weighted"] is None


def test_table_1_shows_both_averages_and_the_subcategory_table_says_what_is_noise():
    labels = {m: {"label": m.upper(), "family": "F", "group": "open"} for m in ("a", "b")}
    a = score_predictions(rows({"Sound": (20, 19), "Music": (20, 10)}), n_resamples=200)
    b = score_predictions(rows({"Sound": (20, 1), "Music": (20, 11)}), n_resamples=200)
    scores = {"a": {**a, "model": "a"}, "b": {**b, "model": "b"}}
    table = probe_table(scores, labels, ["Sound", "Music"])
    assert {"avg", "ci_low", "ci_high", "avg_akb", "akb_ci_low", "akb_ci_high"} <= set(table.columns)
    shown = table_display(table, ["Sound", "Music"])
    assert list(shown.columns[:7]) == ["Model", "Family", "Mode", "Avg.", "95% CI", "AKB-weighted", "AKB-w. 95% CI"]
    subs = subcategory_table(scores, labels).set_index("subcategory")
    assert subs.loc["Sound-s", "models differ"] == "beyond noise"  # 95% vs 5% of 20 items
    assert subs.loc["Music-s", "models differ"] == "within noise"  # 50% vs 55% of 20 items
    assert subs.loc["Sound-s", "n"] == 20 and subs.loc["Sound-s", "A"].startswith("95.0 (")
