"""Paper mode for "All That Glitters Is Not Audio" (arXiv 2604.24401): its Table 1, retention
curves and item decomposition rebuilt from the published aggregate numbers (copies in
workflow/data/paper/), and a diagnostics run of the same audio LLMs set beside them.

Figures follow akb.report.figures (object API, STYLE, PNG + PDF, the numbers drawn are returned)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

from akb.diagnostics.analysis import ALL, ITEM_CLASSES, ratio
from akb.diagnostics.conditions import FRAGMENT_NS
from akb.report.diagnostics import plot_decomposition
from akb.report.figures import _MARKERS, _PALETTE, COLUMN_WIDTH_IN, STYLE, _save, compare_with_paper
from akb.tables import write_table
from akb.io import atomic_path
from akb.report.paper import PAPER_DIR

log = logging.getLogger(__name__)

TABLE1 = "glitters_table1_text_prior.csv"
RETENTION = "glitters_retention_and_decomposition.csv"
# Display name -> column prefix in Table 1, in the paper's order.
BENCHMARKS = {"MMAU": "mmau", "MMAR": "mmar", "MMAU-Pro": "mmaupro"}
# Table 1's measures: column suffix -> display name.
MEASURES = {"full": "full", "none": "none", "tb": "TB", "rtp": "R_TP"}
# The decomposition's short names (as printed in the paper) for akb.diagnostics.analysis' item classes.
CLASS_COLUMNS = dict(zip(("TS", "FS", "XS", "AH", "UN"), ITEM_CLASSES))
MEAN_ROW = "Mean (R_TP: ratio of means)"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / name)


def table1_long() -> pd.DataFrame:
    """Table 1 in long form: one row per (model, benchmark), columns full, none, tb, rtp (%)."""
    table = _read(TABLE1)
    return pd.DataFrame([
        {"model": row["model"], "benchmark": name, **{m: float(row[f"{prefix}_{m}"]) for m in MEASURES}}
        for name, prefix in BENCHMARKS.items() for _, row in table.iterrows()
    ])


def benchmark_text_prior(long: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark, the model-averaged accuracies and R_TP as the paper prints it: the ratio of the
    averaged accuracies (100 x mean none / mean full), beside the mean of the per-model R_TP, which
    the paper does not use (a model with a low full accuracy would weigh as much as any other)."""
    rows = []
    for benchmark, g in long.groupby("benchmark", sort=False):
        rows.append({"benchmark": benchmark, "n_models": len(g), "full": g["full"].mean(),
                     "none": g["none"].mean(), "tb": g["tb"].mean(),
                     "rtp": 100 * ratio(g["none"].mean(), g["full"].mean()), "rtp_mean_of_models": g["rtp"].mean()})
    return pd.DataFrame(rows)


def table1_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as printed: one row per model, "<benchmark> <measure>" columns, and a last row of
    model means whose R_TP is the ratio of the means (`benchmark_text_prior`)."""
    wide = long.pivot(index="model", columns="benchmark", values=list(MEASURES))
    wide = wide.reindex(index=list(dict.fromkeys(long["model"])))
    summary = benchmark_text_prior(long).set_index("benchmark")
    wide.loc[MEAN_ROW] = [summary.at[b, m] for m, b in wide.columns]
    wide = wide[[(m, b) for b in BENCHMARKS for m in MEASURES]]
    wide.columns = [f"{b} {MEASURES[m]}" for m, b in wide.columns]
    wide.index.name = "model"
    return wide


def retention_table() -> pd.DataFrame:
    """The model-averaged retention per benchmark (%): columns none (mean per-model R_TP), 1 (the
    full clip, 100 by definition) and 2..5."""
    table = _read(RETENTION).set_index("benchmark")
    frame = pd.DataFrame({"none": table["retention_none"], 1: 100.0,
                          **{n: table[f"retention_n{n}"] for n in FRAGMENT_NS}})
    return frame.astype(float)


def decomposition_table() -> pd.DataFrame:
    """The model-averaged item decomposition per benchmark (% of items): TS, FS, XS, AH, UN, AN and
    the mean, minimum and maximum over models of XS/AN."""
    columns = [*CLASS_COLUMNS, "AN", "XS_over_AN_mean", "XS_over_AN_min", "XS_over_AN_max"]
    return _read(RETENTION).set_index("benchmark")[columns].astype(float)


@mpl.rc_context(STYLE)
def plot_retention(retention: pd.DataFrame, out_stem: Path) -> pd.DataFrame:
    """R_N (%) against N, one line per benchmark from the full clip (N = 1, 100%) to N = 5, and the
    no-audio point at the left, hollow and not joined (no audio is not "more pieces"), as
    akb.report.diagnostics.plot_retention_curves draws a run's. Writes out_stem.png/.pdf; returns
    the values drawn."""
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 2.4))
    ax = fig.add_subplot()
    xs = [1, *FRAGMENT_NS]
    for i, (benchmark, row) in enumerate(retention.iterrows()):
        colour, marker = _PALETTE[i % len(_PALETTE)], _MARKERS[i % len(_MARKERS)]
        ax.plot(xs, row[xs].to_numpy(float), color=colour, marker=marker, ms=3, lw=1.0, label=benchmark)
        ax.plot([0], [row["none"]], color=colour, marker=marker, ms=4, mfc="white", ls="none")
    ax.axvline(0.5, color="0.8", lw=0.6, ls=":")
    ax.set_xticks([0, *xs], ["none", "1\n(full)", *map(str, FRAGMENT_NS)])
    ax.set(xlim=(-0.5, max(xs) + 0.4), xlabel="Pieces per clip N", ylabel="Accuracy relative to full audio (%)",
           title="Retention, mean of 8 audio LLMs")
    ax.legend(loc="lower right", frameon=False)
    _save(fig, out_stem)
    return retention


def plot_item_decomposition(decomposition: pd.DataFrame, out_stem: Path) -> pd.DataFrame:
    """One stacked bar per benchmark (TS, FS, XS, AH, UN in % of items), drawn by
    akb.report.diagnostics.plot_decomposition; each bar's label carries XS/AN's mean and range over
    the models. Returns the shares drawn, one row per bar."""
    labels = [f"{b}\nXS/AN {r.XS_over_AN_mean:.1f}% ({r.XS_over_AN_min:.1f}-{r.XS_over_AN_max:.1f})"
              for b, r in decomposition.iterrows()]
    # plot_decomposition divides counts by n_items: shares of 100 items are the percentages.
    frame = decomposition.rename(columns=CLASS_COLUMNS)[list(ITEM_CLASSES)].assign(n_items=100.0)
    title = "Item decomposition, mean of 8 audio LLMs"  # plot_decomposition's title is the benchmark's name
    frame = frame.assign(model=labels, benchmark=title, domain=ALL).reset_index(drop=True)
    return plot_decomposition(frame, title, out_stem).set_axis(list(decomposition.index))


def build_glitters_paper(out_dir: Path) -> dict[str, pd.DataFrame]:
    """Everything of the paper mode under out_dir: table1, text_prior_benchmarks, retention and
    decomposition tables (CSV/MD/LaTeX), retention and decomposition figures (PNG/PDF)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    long = table1_long()
    tables = {"table1": table1_wide(long), "text_prior_benchmarks": benchmark_text_prior(long),
              "retention": retention_table(), "decomposition": decomposition_table()}
    for stem, frame in tables.items():
        if stem == "retention":
            frame = frame.rename(columns=lambda c: f"R_{c}" if c != "none" else "R_TP (none)").rename_axis("benchmark")
        write_table(frame, out_dir / stem, float_format="%.1f")
    plot_retention(tables["retention"], out_dir / "retention_figure")
    plot_item_decomposition(tables["decomposition"], out_dir / "decomposition_figure")
    return tables


def _comparison_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model, "<benchmark> <measure>" columns (%), from long rows model, benchmark,
    full, none, tb, rtp."""
    wide = frame.pivot(index="model", columns="benchmark", values=list(MEASURES))
    wide.columns = [f"{b} {MEASURES[m]}" for m, b in wide.columns]
    return wide


def glitters_comparison(metrics: pd.DataFrame, out_stem: Path) -> pd.DataFrame:
    """A diagnostics run (`diagnostics_metrics.csv`: model and benchmark labels, accuracies in %,
    text_prior as a ratio) beside Table 1, for the models whose label is one of the paper's model
    names and the benchmarks labelled MMAU, MMAR or MMAU-Pro. Writes out_stem.csv/.md/.tex and a
    dot plot (akb.report.figures.compare_with_paper); with no model in common the table is empty and its
    Markdown says why."""
    ours = metrics[(metrics["domain"] == ALL) & metrics["benchmark"].isin(BENCHMARKS)]
    ours = pd.DataFrame({"model": ours["model"], "benchmark": ours["benchmark"], "full": ours["acc_full"],
                         "none": ours["acc_none"], "tb": ours["acc_backbone"], "rtp": 100 * ours["text_prior"]})
    paper = table1_long()
    table = compare_with_paper(_comparison_frame(ours) if len(ours) else pd.DataFrame(),
                               _comparison_frame(paper), out_stem)
    if table.empty:
        note = (f"No diagnosed audio LLM is labelled (display_name) as one of the paper's models "
                f"({', '.join(dict.fromkeys(paper['model']))}) on a benchmark labelled "
                f"{', '.join(BENCHMARKS)}; this run has {sorted(set(metrics['model'])) or 'none'}.")
        log.warning("%s: %s", out_stem, note)
        md = Path(f"{out_stem}.md")
        header = md.read_text(encoding="utf-8")
        with atomic_path(md) as tmp:
            tmp.write_text(f"{header}\n{note}\n", encoding="utf-8")
    return table


def comparison_from_file(metrics_csv: str | Path, out_stem: str | Path) -> pd.DataFrame:
    path = Path(metrics_csv)
    metrics = pd.read_csv(path)
    missing = {"model", "benchmark", "domain", "acc_full", "acc_none", "acc_backbone", "text_prior"} - set(metrics)
    if missing:
        raise ValueError(f"{path}: not a diagnostics metrics table (`akb diagnose`): no column {sorted(missing)}")
    return glitters_comparison(metrics, Path(out_stem))

