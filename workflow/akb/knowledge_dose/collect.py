"""The experiment's predictions gathered into graded rows (the study's own grading: probe rows carry
their verdict; audio-benchmark outputs are read by the official rule), then analysed and written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from akb.io import read_jsonl
from akb.knowledge_dose.analysis import EVALUATIONS, correctness, dose_response, family_accuracy
from akb.knowledge_dose.corpus import corpus_dir, load_corpus
from akb.knowledge_dose.report import write_outputs
from akb.knowledge_dose.variants import variants
from akb.scoring.audio import grade_predictions


def _rows(path: str | Path) -> list[dict]:
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path}: no predictions")
    return rows


def graded_runs(runs: dict[str, dict[str, str]], items) -> dict[str, dict[str, list[dict]]]:
    """variant -> evaluation -> graded rows (id, subcategory, correct) from each run's predictions."""
    graded = {}
    for variant, paths in runs.items():
        unknown = sorted(set(paths) - set(EVALUATIONS))
        if unknown:
            raise ValueError(f"runs of {variant}: unknown evaluation(s) {unknown}; known: {list(EVALUATIONS)}")
        graded[variant] = {
            evaluation: ([{"id": r["id"], "subcategory": r["subcategory"], "correct": r["correct"]} for r in _rows(path)]
                         if evaluation == "probe" else grade_predictions(items, _rows(path)))
            for evaluation, path in paths.items()
        }
    return graded


def report_experiment(settings: dict[str, Any], runs: dict[str, dict[str, str]], items, out_dir: str | Path,
                      seed: int) -> None:
    """Every variant's runs (`runs`: variant -> evaluation -> predictions file) -> the tables, the
    figure and the summary in `out_dir`."""
    chosen = variants(settings)
    missing = [v.name for v in chosen if v.name not in runs]
    if missing:
        raise ValueError(f"no runs given for variant(s) {missing}")
    frame = correctness(graded_runs(runs, items), load_corpus(corpus_dir(settings["corpus"])))
    accuracy, effects = dose_response(frame, chosen, settings["bootstrap_resamples"], seed)
    write_outputs(accuracy, effects, family_accuracy(frame, chosen), out_dir, settings["backbone"],
                  settings["bootstrap_resamples"], settings["doses"], settings["seeds"])
