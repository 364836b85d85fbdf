"""Scores of probe predictions (per model) and the Table-1-style tables over models: categories with
the micro and the AKB-2000-weighted averages, and subcategories with their n and interval."""

from __future__ import annotations

import pandas as pd

from akb.scoring.stats import accuracy_summary, grouped_accuracy
from akb.scoring.weighting import weighted_accuracy


def score_predictions(rows: list[dict], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Micro accuracy (percent) over all items, per category and per subcategory, with bootstrap
    intervals. Every item counts: unparseable outputs are wrong and counted separately."""
    if not rows:
        raise ValueError("no predictions to score")
    bootstrap = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    scores = {
        "mode": rows[0]["mode"],
        **accuracy_summary([r["correct"] for r in rows], **bootstrap),
        "confidence": confidence,
        "unparseable": sum(r["parse_status"] == "unparseable" for r in rows),
        "by_category": grouped_accuracy(rows, "category", "correct", **bootstrap),
        "by_subcategory": grouped_accuracy(rows, "subcategory", "correct", **bootstrap),
    }
    # The average with AKB-2000's category mix (akb.scoring.weighting): the one comparable with the
    # paper's Avg. for a bank of other category sizes; equal to the micro average on AKB-2000 itself.
    scores["akb_weighted"] = weighted_accuracy(rows, **bootstrap)
    if scores["mode"] == "loglik":
        scores["length_normalized"] = accuracy_summary([r["correct_norm"] for r in rows], **bootstrap)
    return scores


def category_order(scores: dict[str, dict], preferred: list[str]) -> list[str]:
    """Categories present in any scores: `preferred` ones first in their order, then the rest."""
    seen = {c for s in scores.values() for c in s["by_category"]}
    return [c for c in preferred if c in seen] + sorted(seen - set(preferred))


def probe_table(scores: dict[str, dict], labels: dict[str, dict], categories: list[str]) -> pd.DataFrame:
    """One row per model, like the paper's Table 1: Avg. (micro) then each category, in percent.

    `scores` maps model name to its scores; `labels` maps it to display name, family and group;
    `categories` gives the column order."""
    records = []
    for name, s in scores.items():
        record = {"model": labels[name]["label"], "family": labels[name]["family"],
                  "group": labels[name]["group"], "mode": s["mode"], "avg": s["accuracy"],
                  "ci_low": s["ci"][0], "ci_high": s["ci"][1]}
        weighted = s.get("akb_weighted")
        if weighted:  # absent from scores written before it existed, None for a bank of other categories
            record |= {"avg_akb": weighted["accuracy"], "akb_ci_low": weighted["ci"][0], "akb_ci_high": weighted["ci"][1]}
        record |= {"n": s["n"], "unparseable": s["unparseable"]}
        for category in categories:
            if category in s["by_category"]:
                record[category] = s["by_category"][category]["accuracy"]
        records.append(record)
    return pd.DataFrame.from_records(records).sort_values("avg", ascending=False, kind="stable")


def _interval(low, high) -> list[str]:
    return [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(low, high)]


def table_display(table: pd.DataFrame, categories: list[str]) -> pd.DataFrame:
    """The table as printed (Markdown, LaTeX): the intervals as one column each, the paper's headings."""
    shown = table.assign(**{"95% CI": _interval(table.ci_low, table.ci_high)})
    weighted = []
    if "avg_akb" in table:
        shown = shown.assign(**{"AKB-w. 95% CI": _interval(table.akb_ci_low, table.akb_ci_high)})
        weighted = ["avg_akb", "AKB-w. 95% CI"]
    columns = ["model", "family", "mode", "avg", "95% CI", *weighted, *[c for c in categories if c in table], "n",
               "unparseable"]
    return shown[columns].rename(columns={"model": "Model", "family": "Family", "mode": "Mode", "avg": "Avg.",
                                          "avg_akb": "AKB-weighted"})


def subcategory_table(scores: dict[str, dict], labels: dict[str, dict]) -> pd.DataFrame:
    """One row per subcategory: each model's accuracy with its interval and n, and whether the models'
    differences there are within noise (every two intervals overlap) or not."""
    models = [(labels[name]["label"], s["by_subcategory"]) for name, s in scores.items()]
    subcategories = list(dict.fromkeys(sub for _, by in models for sub in by))
    rows = []
    for sub in subcategories:
        present = [(label, by[sub]) for label, by in models if sub in by]
        row = {"subcategory": sub, "n": max(s["n"] for _, s in present)}
        row |= {label: f"{s['accuracy']:.1f} ({s['ci'][0]:.1f}-{s['ci'][1]:.1f})" for label, s in present}
        overlap = max(s["ci"][0] for _, s in present) <= min(s["ci"][1] for _, s in present)
        row["models differ"] = "within noise" if overlap else "beyond noise"
        rows.append(row)
    return pd.DataFrame(rows)
