"""Text-prior and audio-reliance diagnostics of audio LLMs on audio benchmarks (arXiv 2604.24401,
"All That Glitters Is Not Audio"; definitions in REFERENCE.md section 2).

Each audio LLM answers every benchmark item under several conditions: `full` (audio + question),
`none` (the same prompt with the audio dropped entirely), `backbone` (the question alone to the
underlying text LLM) and 14 fragment runs `fragment-N-k` (piece k of the clip cut into N in
{2, 3, 4, 5} equal pieces). `silence` and `noise` are optional extras of ours, NOT part of the
published protocol; no metric here uses them, the accuracy table only lists them.

Record format (one per item, condition, model and benchmark; a list of dicts or a DataFrame):

    {"model": str, "benchmark": str,            # only for the multi-run functions
     "id": str, "condition": str, "domain": str,
     "correct": bool,                           # None or False allowed when `error` is set
     "error": str | None}                       # e.g. a FragmentError message; column optional

Every item must have exactly one record in every condition of its run (MissingRecordsError names
model, benchmark, condition and ids otherwise). Accuracy counts every item, as everywhere in this
workflow: an errored run is a wrong answer (and is counted in `errors`). Only the item
decomposition treats errored fragment runs specially (as the reference says, see `classify_items`).

Units: accuracies are in percent; text prior, retention and class shares are plain ratios. A ratio
whose denominator is zero (Acc_full = 0, no Audio-Needed item) is NaN, never 0: 0 would claim "no
text prior" or "no cross-segment item" where there is simply nothing to divide by.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from akb.diagnostics.conditions import BACKBONE, FRAGMENT_CONDITIONS, FRAGMENT_NS, FULL, NONE, REQUIRED_CONDITIONS, fragment_condition
from akb.scoring.stats import accuracy_summary, percentile_interval, resample_indices

# --------------------------------------------------------------------------------------------
# Records -> validated per-item outcomes


class MissingRecordsError(ValueError):
    """Items without a record in some condition; `missing` maps condition -> ids."""

    def __init__(self, where: str, missing: dict[str, list[str]], n_items: int):
        self.missing = missing
        lines = [f"  {c!r}: {len(ids)} of {n_items} items, e.g. {', '.join(map(str, ids[:8]))}"
                 for c, ids in missing.items()]
        super().__init__(f"{where}: every item needs a record in every condition; missing:\n" + "\n".join(lines))


@dataclass(frozen=True)
class Outcomes:
    """One model on one benchmark: rows are items (benchmark order), columns conditions."""

    correct: pd.DataFrame  # bool; an errored run is False
    errored: pd.DataFrame  # bool
    domain: pd.Series  # id -> domain

    def subset(self, mask: pd.Series) -> Outcomes:
        return Outcomes(self.correct[mask], self.errored[mask], self.domain[mask])

    def accuracy(self, condition: str) -> float:
        """Percent correct in `condition` over all items; NaN with no items."""
        values = self.correct[condition]
        return 100 * float(values.mean()) if len(values) else float("nan")


def _frame(records: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    frame = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if frame.empty:
        raise ValueError("no records")
    absent = {"id", "condition", "domain", "correct"} - set(frame.columns)
    if absent:
        raise ValueError(f"records lack the keys {sorted(absent)}")
    if "error" not in frame.columns:
        frame["error"] = None
    return frame


def outcomes(records: Iterable[dict] | pd.DataFrame, *, required: Iterable[str] = REQUIRED_CONDITIONS,
             ids: Iterable[str] | None = None, where: str = "records") -> Outcomes:
    """Validate one run's records and pivot them to per-item outcomes.

    Items are `ids` (e.g. the benchmark's item list; a record outside it is an error) or every id
    seen. Conditions are `required` plus any other present. Raises MissingRecordsError when an
    item lacks a condition, ValueError for duplicates, an errored record marked correct, a missing
    `correct`, or an item with two domains. `where` names the run in messages."""
    frame = _frame(records)
    duplicated = frame[frame.duplicated(["id", "condition"], keep=False)]
    if not duplicated.empty:
        pairs = list(dict.fromkeys(zip(duplicated["id"], duplicated["condition"])))
        raise ValueError(f"{where}: {len(pairs)} (id, condition) pairs have several records, e.g. {pairs[:5]}")
    errored = frame["error"].notna()
    if (errored & (frame["correct"] == True)).any():  # noqa: E712 (element-wise)
        bad = frame.loc[errored & (frame["correct"] == True), "id"].tolist()  # noqa: E712
        raise ValueError(f"{where}: records with an error cannot be correct, e.g. ids {bad[:5]}")
    is_bool = frame["correct"].map(lambda v: isinstance(v, (bool, np.bool_)))
    if (~errored & ~is_bool).any():
        bad = frame.loc[~errored & ~is_bool, "id"].tolist()
        raise ValueError(f"{where}: `correct` must be true or false unless `error` is set, e.g. ids {bad[:5]}")
    domains = frame.groupby("id", sort=False)["domain"].unique()
    if (domains.map(len) > 1).any():
        raise ValueError(f"{where}: items with several domains, e.g. {domains[domains.map(len) > 1].head(3).to_dict()}")

    order = list(dict.fromkeys(ids if ids is not None else frame["id"]))
    unknown = sorted(set(frame["id"]) - set(order))
    if unknown:
        raise ValueError(f"{where}: {len(unknown)} records' ids are not benchmark items, e.g. {unknown[:5]}")
    conditions = list(dict.fromkeys([*required, *frame["condition"]]))
    seen = frame.groupby("condition")["id"].agg(set).to_dict()
    missing = {c: [i for i in order if i not in seen.get(c, set())] for c in conditions}
    missing = {c: m for c, m in missing.items() if m}
    if missing:
        raise MissingRecordsError(where, missing, len(order))

    frame["correct"] = ~errored & frame["correct"].where(~errored, False).astype(bool)
    frame["errored"] = errored

    def wide(column: str) -> pd.DataFrame:
        return frame.pivot(index="id", columns="condition", values=column).loc[order, conditions].astype(bool)

    return Outcomes(wide("correct"), wide("errored"), domains.map(lambda d: d[0]).loc[order])


# --------------------------------------------------------------------------------------------
# Metrics of one run

TEXT_SOLVABLE, FRAGMENT_SUFFICIENT, CROSS_SEGMENT = "text_solvable", "fragment_sufficient", "cross_segment"
AUDIO_HARMFUL, UNSOLVABLE = "audio_harmful", "unsolvable"
ITEM_CLASSES = (TEXT_SOLVABLE, FRAGMENT_SUFFICIENT, CROSS_SEGMENT, AUDIO_HARMFUL, UNSOLVABLE)
AUDIO_NEEDED = (FRAGMENT_SUFFICIENT, CROSS_SEGMENT)
CLASS_LABELS = {TEXT_SOLVABLE: "Text-Solvable", FRAGMENT_SUFFICIENT: "Fragment-Sufficient",
                CROSS_SEGMENT: "Cross-Segment", AUDIO_HARMFUL: "Audio-Harmful", UNSOLVABLE: "Unsolvable"}
ALL = "all"  # the domain label of whole-benchmark rows


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0 or either is NaN."""
    if not np.isfinite(numerator) or not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return float(numerator / denominator)


def text_prior_rate(out: Outcomes) -> float:
    """R_TP = Acc_none / Acc_full."""
    return ratio(out.accuracy(NONE), out.accuracy(FULL))


def _fragment_hits(out: Outcomes, n: int) -> np.ndarray:
    """Per item, the share of the n pieces answered right; its mean is mean_k Acc_{n,k} (as a
    fraction), since every piece is run on the same items."""
    return out.correct[[fragment_condition(n, k) for k in range(n)]].to_numpy(float).mean(axis=1)


def retention(out: Outcomes, n: int) -> float:
    """R_N = mean_k Acc_{N,k} / Acc_full."""
    return ratio(100 * float(_fragment_hits(out, n).mean()), out.accuracy(FULL))


def classify_items(out: Outcomes) -> pd.Series:
    """Each item's class (exhaustive, exclusive): Text-Solvable (right in full and none),
    Audio-Needed (right in full, wrong in none) split into Fragment-Sufficient (right in at least
    one of the 14 fragment runs, or any fragment run errored: conservative, an item is never called
    Cross-Segment on the strength of a run that did not happen) and Cross-Segment (wrong in all 14),
    Audio-Harmful (wrong in full, right in none), Unsolvable (wrong in both). An errored full or
    none run is a wrong answer."""
    full, none = out.correct[FULL], out.correct[NONE]
    fragments = list(FRAGMENT_CONDITIONS)
    some_piece = out.correct[fragments].any(axis=1) | out.errored[fragments].any(axis=1)
    classes = np.select([full & none, full & ~none & some_piece, full & ~none, ~full & none],
                        [TEXT_SOLVABLE, FRAGMENT_SUFFICIENT, CROSS_SEGMENT, AUDIO_HARMFUL], UNSOLVABLE)
    return pd.Series(classes, index=out.correct.index, name="item_class")


def _bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, n_resamples: int, confidence: float,
                     seed: int) -> tuple[float, float]:
    """Percentile interval of mean(numerator) / mean(denominator), resampling items (paired). NaN
    when a resample has a zero denominator: the ratio is then too unstable to bound."""
    if n_resamples <= 0 or numerator.size == 0:
        return (float("nan"), float("nan"))
    idx = resample_indices(numerator.size, n_resamples, seed)
    den = denominator[idx].mean(axis=1)
    if (den == 0).any():
        return (float("nan"), float("nan"))
    return percentile_interval(numerator[idx].mean(axis=1) / den, confidence)


def run_metrics(out: Outcomes, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """One row of metrics: accuracies (%), R_TP with its item-bootstrap interval, R_2..R_5, class
    counts, Cross-Segment / Audio-Needed, and how many records errored."""
    full = out.correct[FULL].to_numpy(float)
    none = out.correct[NONE].to_numpy(float)
    row = {
        "n_items": len(out.correct),
        "acc_full": out.accuracy(FULL),
        "acc_none": out.accuracy(NONE),
        "acc_backbone": out.accuracy(BACKBONE) if BACKBONE in out.correct else float("nan"),
        "text_prior": text_prior_rate(out),
    }
    row["text_prior_low"], row["text_prior_high"] = _bootstrap_ratio(none, full, n_resamples, confidence, seed)
    row.update({f"retention_{n}": retention(out, n) for n in FRAGMENT_NS})
    counts = classify_items(out).value_counts()
    row.update({c: int(counts.get(c, 0)) for c in ITEM_CLASSES})
    row["audio_needed"] = row[FRAGMENT_SUFFICIENT] + row[CROSS_SEGMENT]
    row["cross_segment_share"] = ratio(row[CROSS_SEGMENT], row["audio_needed"])
    row["fragment_errors"] = int(out.errored[list(FRAGMENT_CONDITIONS)].to_numpy().sum())
    row["errors"] = int(out.errored.to_numpy().sum())
    return row


def _domain_groups(out: Outcomes, by_domain: bool) -> Iterator[tuple[str, Outcomes]]:
    yield ALL, out
    if by_domain:
        for domain in dict.fromkeys(out.domain):
            yield domain, out.subset(out.domain == domain)


# --------------------------------------------------------------------------------------------
# Many runs (models x benchmarks)


def _runs(records: Iterable[dict] | pd.DataFrame, ids: Mapping[str, Iterable[str]] | None,
          required: Iterable[str]) -> Iterator[tuple[str, str, Outcomes]]:
    frame = _frame(records)
    absent = {"model", "benchmark"} - set(frame.columns)
    if absent:
        raise ValueError(f"records lack the keys {sorted(absent)}")
    if frame[["model", "benchmark"]].isna().any(axis=None):
        raise ValueError("records with no model or benchmark")  # groupby would drop them silently
    for (model, benchmark), group in frame.groupby(["model", "benchmark"], sort=False):
        where = f"model {model!r}, benchmark {benchmark!r}"
        yield model, benchmark, outcomes(group, required=required, where=where,
                                         ids=None if ids is None else ids[benchmark])


def diagnostics_table(records: Iterable[dict] | pd.DataFrame, *, ids: Mapping[str, Iterable[str]] | None = None,
                      by_domain: bool = True, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """`run_metrics` per model x benchmark x domain (domain "all" first). `ids` optionally maps a
    benchmark to its item ids, so an item no condition has a record for is caught too."""
    rows = [{"model": model, "benchmark": benchmark, "domain": domain,
             **run_metrics(sub, n_resamples=n_resamples, seed=seed)}
            for model, benchmark, out in _runs(records, ids, REQUIRED_CONDITIONS)
            for domain, sub in _domain_groups(out, by_domain)]
    return pd.DataFrame(rows)


def accuracy_table(records: Iterable[dict] | pd.DataFrame, *, ids: Mapping[str, Iterable[str]] | None = None,
                   by_domain: bool = True, required: Iterable[str] = REQUIRED_CONDITIONS,
                   n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy (%) with its bootstrap interval per model x benchmark x domain x condition, every
    condition present (extras included); `errors` counts errored runs, already counted wrong."""
    rows = []
    for model, benchmark, out in _runs(records, ids, required):
        for domain, sub in _domain_groups(out, by_domain):
            for condition in sub.correct.columns:
                s = accuracy_summary(sub.correct[condition].to_numpy(), n_resamples=n_resamples, seed=seed)
                rows.append({"model": model, "benchmark": benchmark, "domain": domain, "condition": condition,
                             "n": s["n"], "correct": s["correct"], "errors": int(sub.errored[condition].sum()),
                             "accuracy": s["accuracy"], "ci_low": s["ci"][0], "ci_high": s["ci"][1]})
    return pd.DataFrame(rows)


def item_classes(records: Iterable[dict] | pd.DataFrame, *,
                 ids: Mapping[str, Iterable[str]] | None = None) -> pd.DataFrame:
    """One row per model x benchmark x item: model, benchmark, id, domain, item_class."""
    frames = [pd.DataFrame({"model": model, "benchmark": benchmark, "id": out.correct.index,
                            "domain": out.domain.to_numpy(), "item_class": classify_items(out).to_numpy()})
              for model, benchmark, out in _runs(records, ids, REQUIRED_CONDITIONS)]
    return pd.concat(frames, ignore_index=True)


def benchmark_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Averages over models per benchmark x domain, from `diagnostics_table` output.

    As in the reference: text prior = mean(Acc_none) / mean(Acc_full) (ratio of means); retention
    = mean of the per-model R_N (mean of ratios). A model whose ratio is NaN (its Acc_full is 0) has
    no ratio to average and is left out of that mean; `n_models_defined` says how many were used.
    Cross-Segment / Audio-Needed is likewise the mean of per-model shares over models with
    Audio-Needed items, and `cross_segment_share_pooled` the share of the summed counts."""
    rows = []
    for (benchmark, domain), g in table.groupby(["benchmark", "domain"], sort=False):
        row = {"benchmark": benchmark, "domain": domain, "n_models": len(g),
               "acc_full": g["acc_full"].mean(), "acc_none": g["acc_none"].mean(),
               "acc_backbone": g["acc_backbone"].mean(),  # NaN when no model has a backbone run
               "text_prior": ratio(g["acc_none"].mean(), g["acc_full"].mean()),
               "n_models_defined": int(g["retention_2"].notna().sum())}
        row.update({f"retention_{n}": g[f"retention_{n}"].mean() for n in FRAGMENT_NS})  # NaN-skipping mean
        row.update({c: int(g[c].sum()) for c in (*ITEM_CLASSES, "audio_needed")})
        row["cross_segment_share"] = g["cross_segment_share"].mean()
        row["cross_segment_share_pooled"] = ratio(row[CROSS_SEGMENT], row["audio_needed"])
        rows.append(row)
    return pd.DataFrame(rows)


def write_diagnostics_tables(records: Iterable[dict] | pd.DataFrame, out_dir: str | Path, *,
                             ids: Mapping[str, Iterable[str]] | None = None, n_resamples: int = 1000,
                             seed: int = 0, formats: tuple[str, ...] = ("csv", "md")) -> dict[str, pd.DataFrame]:
    """Write diagnostics_{accuracy,metrics,benchmarks,items}.{csv,md} under out_dir; returns the
    frames by name (accuracy, metrics, benchmarks, items)."""
    # Imported here: akb.report.figures pulls in matplotlib and seaborn, which a model run cutting
    # fragments has no use for.
    from akb.tables import write_table

    frame = _frame(records)  # read once: `records` may be a one-shot iterator
    tables = {
        "accuracy": accuracy_table(frame, ids=ids, n_resamples=n_resamples, seed=seed),
        "metrics": diagnostics_table(frame, ids=ids, n_resamples=n_resamples, seed=seed),
        "items": item_classes(frame, ids=ids),
    }
    tables["benchmarks"] = benchmark_summary(tables["metrics"])
    out_dir = Path(out_dir)
    for name, table in tables.items():
        # 4 significant digits keep both 66.67 (%) and 0.6667 (ratios) readable.
        write_table(table, out_dir / f"diagnostics_{name}", float_format="%.4g", formats=formats)
    return tables


# --------------------------------------------------------------------------------------------
# Validation on the synthetic suite (akb.data.synthetic): items carry the top-level key
# `reliance`, what each was built to need. Values as in akb.data.synthetic.RELIANCES.

RELIANCE_KEY = "reliance"
WHOLE_CLIP, ANY_PART, NO_AUDIO = "whole_clip", "any_part", "none"


def suite_reliance(suite_records: Iterable[dict]) -> dict[str, str]:
    """id -> intended reliance from the synthetic suite's records (`load_suite` output)."""
    return {r["id"]: r[RELIANCE_KEY] for r in suite_records}


def reliance_agreement(classes: pd.DataFrame, reliance: Mapping[str, str]) -> pd.DataFrame:
    """How well the decomposition recovers what each synthetic item was built to need, one row per
    model x benchmark in `classes` (`item_classes` output; or any frame with id and item_class):

    - cross_segment_whole: share of Cross-Segment items built "whole_clip" (precision);
    - whole_cross_segment: share of Audio-Needed "whole_clip" items found Cross-Segment (recall);
    - any_fragment_sufficient: share of Audio-Needed "any_part" items found Fragment-Sufficient;
    - no_audio_needed: "none" (knowledge) items the model needed audio for, which should be 0.

    Shares with nothing to divide by are NaN. Ids absent from `reliance` raise KeyError."""
    unknown = sorted(set(classes["id"]) - set(reliance))
    if unknown:
        raise KeyError(f"items without a reliance label, e.g. {unknown[:5]}")
    keys = [k for k in ("model", "benchmark") if k in classes.columns]
    groups = classes.groupby(keys, sort=False) if keys else [((), classes)]
    rows = []
    for key, g in groups:
        built = g["id"].map(reliance)
        needed = g["item_class"].isin(AUDIO_NEEDED)
        cross = g["item_class"] == CROSS_SEGMENT
        whole, any_part = needed & (built == WHOLE_CLIP), needed & (built == ANY_PART)
        rows.append({
            **dict(zip(keys, key if isinstance(key, tuple) else (key,))),
            "audio_needed": int(needed.sum()), "cross_segment": int(cross.sum()),
            "cross_segment_whole": ratio((cross & (built == WHOLE_CLIP)).sum(), cross.sum()),
            "whole_cross_segment": ratio((whole & cross).sum(), whole.sum()),
            "any_fragment_sufficient": ratio((any_part & ~cross).sum(), any_part.sum()),
            "no_audio_needed": int((needed & (built == NO_AUDIO)).sum()),
        })
    return pd.DataFrame(rows)
