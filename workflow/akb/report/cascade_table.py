"""The cascade's Table 2: accuracy per (captioner, LLM), overall and per domain, per benchmark."""

from __future__ import annotations

import pandas as pd


def cascade_table(scores: list[dict], labels: dict[str, dict]) -> pd.DataFrame:
    """One row per (captioner, LLM); columns `{benchmark}_avg` and `{benchmark}_{domain}` in
    percent, like the paper's Table 2. Each scores dict carries model, captioner and benchmark."""
    rows: dict[tuple[str, str], dict] = {}
    for s in scores:
        row = rows.setdefault((s["captioner"], s["model"]), {
            "captioner": s["captioner"], "llm": labels[s["model"]]["label"], "group": labels[s["model"]]["group"],
        })
        row[f"{s['benchmark']}_avg"] = s["accuracy"]
        for domain, summary in s["by_domain"].items():
            row[f"{s['benchmark']}_{domain}"] = summary["accuracy"]
    return pd.DataFrame(list(rows.values()))
