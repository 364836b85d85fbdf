"""`akb` commands that turn score files into tables and figures, ours and the papers'."""

from __future__ import annotations

import json
from pathlib import Path

from akb.options import add_bootstrap, json_arg


def cmd_probe_table(args) -> int:
    from akb.tables import write_table
    from akb.scoring.probe import category_order, probe_table, subcategory_table, table_display

    scores = {s["model"]: s for s in (json.loads(Path(path).read_text()) for path in args.scores)}
    categories = category_order(scores, args.categories)
    table = probe_table(scores, args.labels, categories)
    write_table(table, Path(args.out_stem), formats=("csv",))
    write_table(table_display(table, categories), Path(args.out_stem), formats=("md", "tex"))
    write_table(subcategory_table(scores, args.labels), Path(f"{args.out_stem}_subcategories"), formats=("csv", "md"))
    return 0


def cmd_cascade_table(args) -> int:
    from akb.report.cascade_table import cascade_table
    from akb.tables import write_table

    write_table(cascade_table([json.loads(Path(p).read_text()) for p in args.scores], args.labels),
                Path(args.out_stem))
    return 0


def cmd_collect_metrics(args) -> int:
    import pandas as pd

    from akb.report.study import audio_metrics, probe_metrics, write_metrics

    long = pd.concat([probe_metrics(args.probe_scores, args.labels, args.bank_label),
                      audio_metrics(args.cascade_scores, args.labels, "Text", args.main_captioner),
                      audio_metrics(args.grounded_scores, args.labels, "Audio")], ignore_index=True)
    write_metrics(long, Path(args.out_dir))
    return 0


def cmd_study_figures(args) -> int:
    from akb.report.study import build_study_figures

    build_study_figures(Path(args.metrics), Path(args.figures_dir), Path(args.tables_dir), args.resamples, args.seed)
    return 0


def cmd_paper_figures(args) -> int:
    from akb.report.study import build_paper_figures

    build_paper_figures(Path(args.out_dir), args.resamples, args.seed)
    return 0


def cmd_glitters_comparison(args) -> int:
    from akb.report.glitters import comparison_from_file

    comparison_from_file(args.metrics, args.out_stem)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("probe-table", help="Table-1-style table over models (CSV, Markdown, LaTeX)")
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--labels", type=json_arg, required=True, help="JSON: model name -> {label, family, group}")
    p.add_argument("--categories", nargs="*", default=[], help="preferred column order")
    p.add_argument("--out-stem", required=True, help="writes STEM.csv (numeric), STEM.md and STEM.tex, and the "
                   "subcategories (accuracy, interval, n, whether models differ beyond noise) to STEM_subcategories.csv/.md")
    p.set_defaults(func=cmd_probe_table)

    p = sub.add_parser("cascade-table", help="Table-2-style cascade table (CSV, Markdown, LaTeX)")
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--labels", type=json_arg, required=True)
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_cascade_table)

    p = sub.add_parser("collect-metrics", help="one metrics table (models x metrics) from measured scores")
    p.add_argument("--probe-scores", nargs="+", required=True)
    p.add_argument("--cascade-scores", nargs="*", default=[])
    p.add_argument("--grounded-scores", nargs="*", default=[])
    p.add_argument("--labels", type=json_arg, required=True, help="JSON: model name -> {label, ...}")
    p.add_argument("--bank-label", required=True, help='metric prefix, e.g. "AKB-2000"')
    p.add_argument("--main-captioner", default=None,
                   help='whose cascade scores are "{benchmark} (Text)" (default: the only captioner, if one)')
    p.add_argument("--out-dir", default="results/tables")
    p.set_defaults(func=cmd_collect_metrics)

    p = sub.add_parser("study-figures", help="correlation heatmaps and the comparison with the paper")
    p.add_argument("--metrics", required=True, help="metrics_long.csv from collect-metrics")
    p.add_argument("--figures-dir", default="results/figures")
    p.add_argument("--tables-dir", default="results/tables")
    add_bootstrap(p)
    p.set_defaults(func=cmd_study_figures)

    p = sub.add_parser("paper-figures", help="the papers' figures and tables from their published numbers "
                       "(AKB; All That Glitters under glitters/)")
    p.add_argument("--out-dir", default="results/paper")
    add_bootstrap(p)
    p.set_defaults(func=cmd_paper_figures)

    p = sub.add_parser("glitters-comparison", help="a diagnostics run beside All That Glitters' Table 1")
    p.add_argument("--metrics", default="results/tables/diagnostics_metrics.csv", help="written by `akb diagnose`")
    p.add_argument("--out-stem", default="results/tables/glitters_comparison",
                   help="writes STEM.csv, .md, .tex and the dot plot STEM.png, .pdf")
    p.set_defaults(func=cmd_glitters_comparison)
