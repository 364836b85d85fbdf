"""Figures of the text-prior / audio-reliance diagnostics, from `akb.diagnostics.analysis.diagnostics_table`
output: retention curves over N, item-decomposition bars per model, text prior per domain.

Same conventions as akb.report.figures: matplotlib's object API (no pyplot), its STYLE, PNG + PDF per
figure, a placeholder figure when there is nothing to plot, and every function returns the numbers
it drew so tests check data rather than pixels."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from akb.diagnostics.analysis import ALL, CLASS_LABELS, ITEM_CLASSES, benchmark_summary
from akb.diagnostics.conditions import FRAGMENT_NS
from akb.report.figures import _MARKERS, _PALETTE, COLUMN_WIDTH_IN, STYLE, _message_figure, _save
from akb.report.paper import short_label

# Classes that need audio in colour, the others in greys, so the Audio-Needed part stands out.
CLASS_COLOURS = {"text_solvable": "0.78", "fragment_sufficient": _PALETTE[0], "cross_segment": _PALETTE[3],
                 "audio_harmful": _PALETTE[1], "unsolvable": "0.45"}


def _select(table: pd.DataFrame, benchmark: str, domain: str) -> pd.DataFrame:
    return table[(table["benchmark"] == benchmark) & (table["domain"] == domain)]


def _legend_below(ax, ncol: int, y: float) -> None:
    # Below the axes (and their x label: `y` in axes fractions) the legend never hides data,
    # however many models there are.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, y), ncol=ncol, frameon=False,
              handletextpad=0.3, columnspacing=1.0)


@mpl.rc_context(STYLE)
def plot_retention_curves(table: pd.DataFrame, benchmark: str, out_stem: Path, domain: str = ALL) -> pd.DataFrame:
    """Retention R_N against N = 1..5, one line per model (N = 1 is the full clip: 1.0 by
    definition), and the no-audio ratio R_TP at the left as a separate hollow point, not joined to
    the curve (no audio is not "more pieces"). The black line is the benchmark value (mean of the
    per-model ratios; its none point is mean(None)/mean(Full)). Writes out_stem.png/.pdf; returns
    the values drawn, one row per model plus "benchmark", columns "none", 1, ..., 5."""
    subset = _select(table, benchmark, domain)
    title = benchmark if domain == ALL else f"{benchmark}, {domain}"
    columns = ["none", 1, *FRAGMENT_NS]
    if subset.empty:
        _save(_message_figure(f"{title}: no diagnostics to plot"), out_stem)
        return pd.DataFrame(columns=columns)

    summary = benchmark_summary(subset).iloc[0]
    rows = {model: [r.text_prior, 1.0, *(getattr(r, f"retention_{n}") for n in FRAGMENT_NS)]
            for model, r in zip(subset["model"], subset.itertuples())}
    rows["benchmark"] = [summary["text_prior"], 1.0, *(summary[f"retention_{n}"] for n in FRAGMENT_NS)]
    values = pd.DataFrame.from_dict(rows, orient="index", columns=columns)

    fig = Figure(figsize=(COLUMN_WIDTH_IN, 2.6))
    ax = fig.add_subplot()
    xs = [1, *FRAGMENT_NS]
    for i, (model, row) in enumerate(values.iterrows()):
        is_mean = model == "benchmark"
        colour = "black" if is_mean else _PALETTE[i % len(_PALETTE)]
        marker = "o" if is_mean else _MARKERS[i % len(_MARKERS)]
        label = "benchmark" if is_mean else short_label(model)
        ax.plot(xs, row[xs].to_numpy(float), color=colour, marker=marker, ms=3, lw=1.6 if is_mean else 0.9,
                label=label, zorder=3 if is_mean else 2)
        ax.plot([0], [row["none"]], color=colour, marker=marker, ms=4, mfc="white", ls="none", zorder=3)
    ax.axvline(0.5, color="0.8", lw=0.6, ls=":")
    ax.axhline(1.0, color="0.6", lw=0.6, ls="--", zorder=0)
    ax.set_xticks([0, *xs], ["none", "1\n(full)", *map(str, FRAGMENT_NS)])
    ax.set(xlim=(-0.5, max(xs) + 0.4), xlabel="Pieces per clip N", title=title,
           ylabel="Accuracy relative to full audio")
    _legend_below(ax, ncol=3, y=-0.3)  # under two-line tick labels and the x label
    _save(fig, out_stem)
    return values


@mpl.rc_context(STYLE)
def plot_decomposition(table: pd.DataFrame, benchmark: str, out_stem: Path, domain: str = ALL) -> pd.DataFrame:
    """One horizontal stacked bar per model: the share (% of items) of each item class, with
    Audio-Needed (Fragment-Sufficient + Cross-Segment) in colour. Writes out_stem.png/.pdf; returns
    the shares, one row per model, one column per class."""
    subset = _select(table, benchmark, domain)
    title = benchmark if domain == ALL else f"{benchmark}, {domain}"
    if subset.empty:
        _save(_message_figure(f"{title}: no diagnostics to plot"), out_stem)
        return pd.DataFrame(columns=list(ITEM_CLASSES))

    shares = subset.set_index("model")[list(ITEM_CLASSES)].div(subset["n_items"].to_numpy(), axis=0) * 100
    height = 1.0 + 0.22 * len(shares)
    fig = Figure(figsize=(COLUMN_WIDTH_IN, height))
    ax = fig.add_subplot()
    y = np.arange(len(shares))
    left = np.zeros(len(shares))
    for cls in ITEM_CLASSES:
        ax.barh(y, shares[cls], left=left, height=0.7, color=CLASS_COLOURS[cls], label=CLASS_LABELS[cls],
                edgecolor="white", linewidth=0.3)
        left += shares[cls].to_numpy()
    ax.set_yticks(y, [short_label(m) for m in shares.index])
    ax.invert_yaxis()  # first model on top, as in the table
    ax.set(xlim=(0, 100), xlabel="Items (%)", title=title)
    # The legend sits a fixed 0.42 in below the axes (under the x label); the axes take about 77%
    # of the figure height.
    _legend_below(ax, ncol=3, y=-0.42 / (0.77 * height))
    _save(fig, out_stem)
    return shares


@mpl.rc_context(STYLE)
def plot_text_prior_by_domain(table: pd.DataFrame, benchmark: str, out_stem: Path) -> pd.DataFrame:
    """Grouped bars: R_TP = Acc_none / Acc_full per domain ("all" first), one bar per model, and a
    black tick at the benchmark value mean(None)/mean(Full). A dashed line marks 1 (no audio does
    as well as full audio). Writes out_stem.png/.pdf; returns R_TP per model (rows) and domain
    (columns), plus a "benchmark" row."""
    subset = table[table["benchmark"] == benchmark]
    if subset.empty:
        _save(_message_figure(f"{benchmark}: no diagnostics to plot"), out_stem)
        return pd.DataFrame()

    values = subset.pivot(index="model", columns="domain", values="text_prior")
    domains = list(dict.fromkeys(subset["domain"]))  # table order: "all" first
    values = values.loc[list(dict.fromkeys(subset["model"])), domains]
    values.loc["benchmark"] = benchmark_summary(subset).set_index("domain")["text_prior"].reindex(domains)

    models = values.index[:-1]
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 2.4))
    ax = fig.add_subplot()
    x = np.arange(len(domains))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        ax.bar(x - 0.4 + width * (i + 0.5), values.loc[model], width, color=_PALETTE[i % len(_PALETTE)],
               label=short_label(model))
    ax.hlines(values.loc["benchmark"], x - 0.42, x + 0.42, color="black", lw=1.4, label="benchmark", zorder=3)
    ax.axhline(1.0, color="0.6", lw=0.6, ls="--", zorder=0)
    ax.set_xticks(x, domains)
    ax.set(ylabel="Text prior  Acc(none) / Acc(full)", title=benchmark)
    _legend_below(ax, ncol=3, y=-0.12)
    _save(fig, out_stem)
    return values


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def write_diagnostics_figures(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """All three figures per benchmark in `table` (retention_<b>, decomposition_<b>,
    text_prior_<b>, each .png and .pdf) under out_dir; returns the file stems written."""
    out_dir = Path(out_dir)
    stems = []
    for benchmark in dict.fromkeys(table["benchmark"]):
        slug = _slug(benchmark)
        for stem, plot in ((f"retention_{slug}", plot_retention_curves),
                           (f"decomposition_{slug}", plot_decomposition),
                           (f"text_prior_{slug}", plot_text_prior_by_domain)):
            plot(table, benchmark, out_dir / stem)
            stems.append(out_dir / stem)
    return stems
