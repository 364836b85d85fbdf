"""Condition runs -> the per-item records akb.diagnostics.analysis reads: every run's predictions
graded by the official rule (or by the judge's letters where a run was judged), labelled with its
model, benchmark and condition."""

from __future__ import annotations

import json
from pathlib import Path

from akb.data.audio_bench import load_audio_benchmark
from akb.diagnostics.analysis import suite_reliance
from akb.io import read_jsonl
from akb.scoring.audio import grade_predictions
from akb.scoring.judge import grade_judged


def graded_records(runs: list[dict], benchmarks: dict[str, dict], labels: dict[str, dict]
                   ) -> tuple[list[dict], dict[str, list[str]], dict[str, str]]:
    """(records, item ids per benchmark label, what each synthetic-suite item was built to need).

    `runs`: {model, benchmark, condition, path[, judged]}; `benchmarks`: name -> {file, kind,
    audio_root, on_bad_item, label[, allow_outside_root]}; `labels`: model name -> {label, ...}."""
    records, ids, reliance = [], {}, {}
    for name, bench in benchmarks.items():
        items, _ = load_audio_benchmark(bench["file"], bench["kind"], bench["audio_root"], bench["on_bad_item"],
                                        allow_outside_root=bench.get("allow_outside_root", False))
        ids[bench["label"]] = [item.id for item in items]
        raw = json.loads(Path(bench["file"]).read_text()) if bench["file"].endswith(".json") else []
        if raw and all("reliance" in r for r in raw):  # the synthetic suite: what each item was built to need
            reliance.update(suite_reliance(raw))
        for run in (r for r in runs if r["benchmark"] == name):
            rows = read_jsonl(run["path"])
            errors = {row["id"]: row.get("error") for row in rows}
            # Judged runs (audio LLMs with diagnostics.judge) take the judge's letters where the rules read none.
            graded = (grade_judged(items, rows, read_jsonl(run["judged"]), run["judged"]) if run.get("judged")
                      else grade_predictions(items, rows))
            records += [{"model": labels[run["model"]]["label"], "benchmark": bench["label"], "id": g["id"],
                         "condition": run["condition"], "domain": g["domain"], "correct": g["correct"],
                         "error": errors.get(g["id"])} for g in graded]  # fmt: skip
    return records, ids, reliance
