"""Scores of probe predictions (per model) and the Table-1-style table over models."""

from __future__ import annotations

import pandas as pd

from akb.scoring.stats import accuracy_summary, grouped_accuracy


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
                  "ci_low": s["ci"][0], "ci_high": s["ci"][1], "n": s["n"], "unparseable": s["unparseable"]}
        for category in categories:
            if category in s["by_category"]:
                record[category] = s["by_category"][category]["accuracy"]
        records.append(record)
    return pd.DataFrame.from_records(records).sort_values("avg", ascending=False, kind="stable")


def table_display(table: pd.DataFrame, categories: list[str]) -> pd.DataFrame:
    """The table as printed (Markdown, LaTeX): the interval as one column, the paper's headings."""
    shown = table.assign(**{"95% CI": [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(table.ci_low, table.ci_high)]})
    columns = ["model", "family", "mode", "avg", "95% CI", *[c for c in categories if c in table], "n", "unparseable"]
    return shown[columns].rename(columns={"model": "Model", "family": "Family", "mode": "Mode", "avg": "Avg."})
