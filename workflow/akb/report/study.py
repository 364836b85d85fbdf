"""The figures stage end to end: the paper's figures from its published numbers, and ours from the
scores the workflow measured (one metrics table, correlation heatmaps, the comparison with the paper)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from akb.report.figures import compare_with_paper, plot_correlation_heatmap, plot_domain_scatter
from akb.tables import write_table
from akb.report.glitters import build_glitters_paper
from akb.io import atomic_path
from akb.scoring.metrics import correlations
from akb.report.paper import BENCHMARKS, METRICS, PAPER_DIR, paper_domain_points, paper_metrics

# The paper's tables as published, rebuilt in every format (file stem -> source CSV).
PAPER_TABLES = {
    "table1_akb2000": "akb2000_table1.csv",
    "table2_cascade": "cascade_table2.csv",
    "table3_grounded": "grounded_table3.csv",
}
LONG_COLUMNS = ["model", "metric", "kind", "value", "n", "ci_low", "ci_high"]
AUDIO_COLUMNS = ["benchmark", "domain", "modality", "captioner"]  # empty for the bank's metrics


def write_correlations(frame: pd.DataFrame, metrics: list[str], out_dir: Path, stem: str,
                       n_resamples: int, seed: int) -> pd.DataFrame:
    """`{stem}.csv` (pair, r, n, p-value, bootstrap interval over models) and the heatmap."""
    corr = correlations(frame, metrics, n_resamples=n_resamples, seed=seed)
    with atomic_path(out_dir / f"{stem}.csv") as tmp:
        corr.insert(0, "pair", corr.metric_a + " ~ " + corr.metric_b)
        corr.to_csv(tmp, index=False, float_format="%.4g")
    plot_correlation_heatmap(corr, metrics, out_dir / f"{stem}_heatmap")
    return corr


def build_paper_figures(out_dir: Path, n_resamples: int = 1000, seed: int = 0) -> None:
    """Figure 2, Figure 3 and Tables 1-3 from the published numbers alone (no models needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = paper_metrics()
    write_table(metrics, out_dir / "metrics")
    write_correlations(metrics, METRICS, out_dir, "correlations", n_resamples, seed)
    points = paper_domain_points()
    for benchmark in BENCHMARKS:
        plot_domain_scatter(points, benchmark, out_dir / f"scatter_{benchmark.lower()}",
                            title_note="Table 2 x, digitised y")
    for stem, source in PAPER_TABLES.items():
        write_table(pd.read_csv(PAPER_DIR / source), out_dir / stem)
    # "All That Glitters Is Not Audio": its Table 1, retention and item decomposition (akb.report.glitters).
    build_glitters_paper(out_dir / "glitters")


def _metric_rows(model: str, groups: list[tuple[str, str, dict]]) -> list[dict]:
    return [{"model": model, "metric": metric, "kind": kind, "value": s["accuracy"],
             "n": s["n"], "ci_low": s["ci"][0], "ci_high": s["ci"][1]} for kind, metric, s in groups]


def probe_metrics(score_files: list[Path], labels: dict[str, dict], bank_label: str) -> pd.DataFrame:
    """Long metrics from probe scores: "{bank} (Text)" per model (the headline, as in Figure 2) and
    "{bank} {category} (Text)" per category, each with its n and bootstrap interval. The headline is
    the average weighted to AKB-2000's category mix where the bank has its categories (the same as
    the micro average on AKB-2000 itself, comparable with the paper's on any other bank); the micro
    average is then kept as "{bank} micro (Text)"."""
    rows = []
    for path in score_files:
        scores = json.loads(Path(path).read_text())
        weighted = scores.get("akb_weighted")
        if weighted:
            groups = [("headline", f"{bank_label} (Text)", {**weighted, "n": scores["n"]}),
                      ("micro", f"{bank_label} micro (Text)", scores)]
        else:
            groups = [("headline", f"{bank_label} (Text)", scores)]
        groups += [("category", f"{bank_label} {c} (Text)", s) for c, s in scores["by_category"].items()]
        rows += _metric_rows(labels[scores["model"]]["label"], groups)
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def audio_metrics(score_files: list[Path], labels: dict[str, dict], modality: str,
                  main_captioner: str | None = None) -> pd.DataFrame:
    """Long metrics from audio-benchmark scores: "{benchmark} ({modality})" per model and
    "{benchmark} {domain} ({modality})" per domain (the axes of Figure 3). modality "Text" is the
    cascade: the main captioner's (default: the only one) are the headline "{benchmark} (Text)" as in
    the paper's Figure 2; another captioner's are tagged "Text, {captioner}" and of kind "captioner",
    so they stay out of Figure 2. "Audio" is the audio-grounded LLMs. The benchmark, domain and
    captioner of each row are kept in their own columns."""
    scores = [json.loads(Path(path).read_text()) for path in score_files]
    captioners = list(dict.fromkeys(s["captioner"] for s in scores))
    if main_captioner is None and len(captioners) == 1:
        main_captioner = captioners[0]
    rows = []
    for s in scores:
        main = modality != "Text" or s["captioner"] == main_captioner
        tag = modality if main else f"{modality}, {s['captioner']}"
        label = labels[s["model"]]["label"]
        where = {"benchmark": s["benchmark"], "modality": modality,
                 "captioner": s["captioner"] if modality == "Text" else None}
        kind = "headline" if main else "captioner"
        rows += [r | where | {"domain": None} for r in _metric_rows(label, [(kind, f"{s['benchmark']} ({tag})", s)])]
        for domain, d_s in s["by_domain"].items():
            groups = [("domain", f"{s['benchmark']} {domain} ({tag})", d_s)]
            rows += [r | where | {"domain": domain} for r in _metric_rows(label, groups)]
    return pd.DataFrame(rows, columns=LONG_COLUMNS + AUDIO_COLUMNS)


def scatter_stem(benchmark: str, captioner: str) -> str:
    return f"scatter_{benchmark}_{captioner}".replace(" ", "_")


def domain_points(long: pd.DataFrame) -> pd.DataFrame:
    """Figure 3's points for this run: per (model, benchmark, domain, captioner) the cascade accuracy
    and the same backbone's audio-grounded accuracy."""
    domains = long[long["kind"] == "domain"]
    text = domains[domains["modality"] == "Text"].rename(columns={"value": "cascade"})
    audio = domains[domains["modality"] == "Audio"].rename(columns={"value": "grounded"})
    keys = ["model", "benchmark", "domain"]
    return text[[*keys, "captioner", "cascade"]].merge(audio[[*keys, "grounded"]], on=keys)


def wide(long: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
    """One row per model, one column per metric (missing stays missing), both in first-seen order."""
    selected = long if kind is None else long[long.kind == kind]
    table = selected.pivot(index="model", columns="metric", values="value")
    return table.loc[list(dict.fromkeys(selected.model)), list(dict.fromkeys(selected.metric))]


def write_metrics(long: pd.DataFrame, tables_dir: Path) -> None:
    """`metrics.csv/.md/.tex` (models x metrics) and `metrics_long.csv` (with n and intervals)."""
    write_table(wide(long), tables_dir / "metrics")
    with atomic_path(tables_dir / "metrics_long.csv") as tmp:
        long.to_csv(tmp, index=False, float_format="%.4f")


def build_study_figures(metrics_long: Path, figures_dir: Path, tables_dir: Path,
                        n_resamples: int = 1000, seed: int = 0) -> None:
    """From our metrics: correlations between categories (and between headline metrics when the
    run has at least two), and our numbers beside the paper's for models both report."""
    long = pd.read_csv(metrics_long)
    figures_dir.mkdir(parents=True, exist_ok=True)
    categories = wide(long, "category")
    write_correlations(categories, list(categories.columns), figures_dir, "category_correlations",
                       n_resamples, seed)
    headline = wide(long, "headline")
    if headline.shape[1] >= 2:  # Figure 2 for this run: probing against the cascade (and later audio)
        write_correlations(headline, list(headline.columns), figures_dir, "correlations", n_resamples, seed)
    if "modality" in long and (long["modality"] == "Audio").any():  # Figure 3 for this run
        points = domain_points(long)
        text = long[long["modality"] == "Text"]
        grounded = set(long.loc[long["modality"] == "Audio", "benchmark"])
        audio_models = set(long.loc[long["modality"] == "Audio", "model"])
        for benchmark, captioner in text[["benchmark", "captioner"]].drop_duplicates().itertuples(index=False):
            fed = set(text.loc[text["captioner"] == captioner, "model"])
            if benchmark in grounded and fed & audio_models:  # a grounded backbone read these captions
                plot_domain_scatter(points[points["captioner"] == captioner], benchmark,
                                    figures_dir / scatter_stem(benchmark, captioner),
                                    title_note=f"{captioner} captions vs audio")
    comparison = compare_with_paper(headline, paper_metrics(), figures_dir / "paper_comparison")
    write_table(comparison, tables_dir / "paper_comparison")
