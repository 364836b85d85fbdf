"""Figures and tables of the figures stage: the Figure-2 correlation heatmap, the Figure-3 domain
scatter, and our results beside the paper's (tables are written by akb.tables).

Figures are built on matplotlib's object API (no pyplot), so importing this module never changes
the caller's backend and no figure outlives its function; PNG is rendered by Agg. Every plot
function returns the numbers it drew, so tests check data rather than pixels."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from akb.io import atomic_path
from akb.tables import write_table
from akb.scoring.metrics import domain_fits
from akb.report.paper import DOMAINS, short_label

log = logging.getLogger(__name__)

# Sized for one paper column (3.5 in) at 1:1, so 7 pt type stays legible in print. DejaVu Sans ships
# with matplotlib: the same glyphs on every machine. Type 42 embeds TrueType fonts in the PDF,
# which publishers accept and which keeps the text editable.
COLUMN_WIDTH_IN = 3.5
STYLE = {
    "font.family": "DejaVu Sans", "font.size": 7, "axes.titlesize": 8, "axes.labelsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
    "axes.linewidth": 0.6, "pdf.fonttype": 42, "savefig.dpi": 300,
}
# seaborn's colour-blind-safe palette; domains keep the same colour and marker in every figure.
_PALETTE = sns.color_palette("colorblind")
_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _save(fig: Figure, out_stem: Path) -> None:
    for fmt in ("png", "pdf"):
        # No creation date in the PDF: the same numbers give the same bytes, so reruns look unchanged.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with atomic_path(f"{out_stem}.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata=metadata)


def _message_figure(text: str) -> Figure:
    """A placeholder figure, so a workflow target exists even when there is nothing to plot."""
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 1.0))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    return fig


@mpl.rc_context(STYLE)
def plot_correlation_heatmap(corr: pd.DataFrame, metrics: list[str], out_stem: Path) -> pd.DataFrame:
    """Figure 2: lower triangle of Pearson r between `metrics`, from `correlations()` output.

    The diagonal (r = 1 by definition) is left out, so the first row and last column are empty and
    not drawn. Cells show "r\\nn=N" on coolwarm from -1 to 1; a pair without r (n < 3) stays blank.
    Writes out_stem.png and out_stem.pdf; returns the square r matrix (rows and columns in `metrics`
    order, NaN on and above the diagonal and for missing pairs)."""
    position = {m: i for i, m in enumerate(metrics)}
    r = pd.DataFrame(np.nan, index=metrics, columns=metrics)
    n = pd.DataFrame(0, index=metrics, columns=metrics)
    for row in corr.itertuples():
        if row.metric_a in position and row.metric_b in position and row.metric_a != row.metric_b:
            a, b = sorted((row.metric_a, row.metric_b), key=position.get, reverse=True)
            r.loc[a, b], n.loc[a, b] = row.r, row.n

    if len(metrics) < 2:  # e.g. a bank limited to items of one category: nothing to correlate
        log.warning("%s: a correlation heatmap needs at least 2 metrics, got %s", out_stem.name, metrics)
        _save(_message_figure(f"needs at least 2 metrics to correlate, got {len(metrics)}"), out_stem)
        return r
    shown = r.iloc[1:, :-1]
    rows, cols = shown.shape
    annot = [[f"{shown.iat[i, j]:.2f}\nn={n.iat[i + 1, j]}" for j in range(cols)] for i in range(rows)]
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 0.55 * len(metrics) + 0.6))
    ax = fig.add_subplot()
    sns.heatmap(
        shown, mask=np.triu(np.ones(shown.shape, dtype=bool), k=1), cmap="coolwarm", vmin=-1, vmax=1,
        annot=np.array(annot), fmt="", annot_kws={"fontsize": 7}, square=True, linewidths=0.5,
        cbar_kws={"label": "Pearson r", "shrink": 0.8, "ticks": [-1, -0.5, 0, 0.5, 1]}, ax=ax,
    )
    ax.tick_params(length=0)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    _save(fig, out_stem)
    return r


def _domain_style(domain: str, extra: list[str]) -> tuple:
    # Known domains keep fixed styles; unknown ones take the next free colour and marker.
    k = DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS) + extra.index(domain)
    return _PALETTE[k % len(_PALETTE)], _MARKERS[k % len(_MARKERS)]


@mpl.rc_context(STYLE)
def plot_domain_scatter(points: pd.DataFrame, benchmark: str, out_stem: Path, title_note: str = "") -> pd.DataFrame:
    """Figure 3 for one benchmark: cascade accuracy (x) against audio-grounded accuracy (y), one
    point per (model, domain) labelled with its short model name, a dashed y = x line and a
    least-squares line per domain with its r in the legend.

    `points` has columns model, benchmark, domain, cascade, grounded (as `paper_domain_points()`).
    Writes out_stem.png and out_stem.pdf; returns the per-domain fits drawn (`domain_fits`)."""
    subset = points[points["benchmark"] == benchmark].dropna(subset=["cascade", "grounded"])
    title = benchmark + (f" ({title_note})" if title_note else "")
    if subset.empty:
        fig = _message_figure(f"{title}: no points to plot")
        _save(fig, out_stem)
        return domain_fits(subset)

    fits = domain_fits(subset)
    extra = sorted(set(subset["domain"]) - set(DOMAINS))
    fig = Figure(figsize=(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN))
    ax = fig.add_subplot()
    values = subset[["cascade", "grounded"]].to_numpy()
    lo, hi = np.floor(values.min()) - 2, np.ceil(values.max()) + 2
    ax.plot([lo, hi], [lo, hi], ls="--", lw=0.8, color="0.55", zorder=0, label="y = x")
    for fit in fits.itertuples():
        group = subset[subset["domain"] == fit.domain]
        colour, marker = _domain_style(fit.domain, extra)
        r_text = "n/a" if np.isnan(fit.r) else f"{fit.r:.2f}"
        ax.scatter(group["cascade"], group["grounded"], s=18, color=colour, marker=marker,
                   edgecolor="white", linewidth=0.4, label=f"{fit.domain} (r = {r_text})", zorder=3)
        if not np.isnan(fit.slope):
            xs = np.array([group["cascade"].min(), group["cascade"].max()])
            ax.plot(xs, fit.slope * xs + fit.intercept, color=colour, lw=1.0, zorder=2)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", title=title,
           xlabel="Cascade accuracy (%)", ylabel="Audio-grounded accuracy (%)")
    # Below the axes, the legend can never hide a point; domains first, the y = x line last.
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[1:] + handles[:1], labels[1:] + labels[:1], loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncol=2, frameon=False, handletextpad=0.3, columnspacing=1.0)
    colours = [_domain_style(d, extra)[0] for d in subset["domain"]]
    _label_points(ax, subset["cascade"], subset["grounded"], [short_label(m) for m in subset["model"]], colours)
    _save(fig, out_stem)
    return fits


# Label positions tried around a point, in points: right, left, above, below, then further out.
_LABEL_OFFSETS = [(3, 1), (-3, 1), (3, -1), (-3, -1), (0, 5), (0, -5), (3, 6), (-3, 6), (3, -6), (-3, -6)]


def _label_points(ax, xs, ys, labels: list[str], colours: list) -> None:
    """Put each label where it overlaps the fewest earlier labels and points (greedy): 24 labels in
    a column-wide panel would otherwise pile up where models score alike."""
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    ax.apply_aspect()  # fixes the axes box, so pixel positions are final
    pad = 2.5 * ax.figure.dpi / 72  # marker half-width in pixels
    taken = [Bbox.from_extents(cx - pad, cy - pad, cx + pad, cy + pad)
             for cx, cy in ax.transData.transform(np.column_stack([xs, ys]))]
    frame = ax.get_window_extent(renderer)

    def area(box: Bbox | None) -> float:
        return 0.0 if box is None else box.width * box.height

    def cost(box: Bbox) -> float:  # overlap with labels and points, plus twice the part outside the axes
        outside = area(box) - area(Bbox.intersection(box, frame))
        return sum(area(Bbox.intersection(box, t)) for t in taken) + 2 * outside

    for x, y, label, colour in zip(xs, ys, labels, colours):
        best = None
        for dx, dy in _LABEL_OFFSETS:
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, color=colour,
                               zorder=4, ha="left" if dx > 0 else "right" if dx < 0 else "center",
                               va="bottom" if dy > 0 else "top")
            box = text.get_window_extent(renderer)
            if best is not None and cost(box) >= best[0]:
                text.remove()
                continue
            if best is not None:
                best[1].remove()
            best = (cost(box), text, box)
            if best[0] == 0:
                break
        taken.append(best[2])


def _by_model(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("model") if "model" in frame.columns else frame


COMPARISON_COLUMNS = ["model", "metric", "ours", "paper", "difference"]


@mpl.rc_context(STYLE)
def compare_with_paper(ours: pd.DataFrame, paper: pd.DataFrame, out_stem: Path) -> pd.DataFrame:
    """Our numbers beside the published ones for the models and metrics both frames have.

    Both frames are wide, one row per model (index or `model` column, matched by exact name, e.g.
    "Qwen3-8B"), one numeric column per metric (as `paper_metrics()`). Returns and writes (CSV,
    Markdown, LaTeX) a long table model, metric, ours, paper, difference (ours - paper), leaving out
    pairs where either number is missing, and draws a dot plot of ours vs paper to out_stem.png/.pdf.
    With nothing in common the table is empty (header only) and the figure says so."""
    ours, paper = _by_model(ours), _by_model(paper)
    metrics = [m for m in ours.columns if m in paper.columns
               and pd.api.types.is_numeric_dtype(ours[m]) and pd.api.types.is_numeric_dtype(paper[m])]
    rows = [
        {"model": model, "metric": metric, "ours": float(ours.at[model, metric]),
         "paper": float(paper.at[model, metric])}
        for metric in metrics for model in ours.index
        if model in paper.index and pd.notna(ours.at[model, metric]) and pd.notna(paper.at[model, metric])
    ]
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS[:-1])
    table["difference"] = table["ours"] - table["paper"]
    write_table(table, out_stem)

    if table.empty:
        _save(_message_figure("no model in common with the paper"), out_stem)
        return table
    several = table["metric"].nunique() > 1
    labels = [f"{m}, {k}" if several else m for m, k in zip(table["model"], table["metric"])]
    y = np.arange(len(table))
    fig = Figure(figsize=(COLUMN_WIDTH_IN, 0.8 + 0.17 * len(table)))
    ax = fig.add_subplot()
    ax.hlines(y, table[["ours", "paper"]].min(axis=1), table[["ours", "paper"]].max(axis=1), color="0.7", lw=1)
    ax.scatter(table["paper"], y, s=22, facecolor="none", edgecolor="black", linewidth=0.8, label="paper", zorder=3)
    ax.scatter(table["ours"], y, s=14, color=_PALETTE[0], label="this run", zorder=4)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("Accuracy (%)" if several else f"{table['metric'].iat[0]}, accuracy (%)")
    ax.grid(axis="x", lw=0.4, color="0.9")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    _save(fig, out_stem)
    return table
