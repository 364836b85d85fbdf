"""`akb diagnose`: text-prior and audio-reliance tables and figures from the condition runs."""

from __future__ import annotations

from pathlib import Path

from akb.options import add_bootstrap, json_arg


def cmd_diagnose(args) -> int:
    """Grade every condition's predictions by the official rule, then the diagnostics tables and figures."""
    from akb.diagnostics.analysis import reliance_agreement, write_diagnostics_tables
    from akb.diagnostics.records import graded_records
    from akb.report.diagnostics import write_diagnostics_figures
    from akb.tables import write_table

    records, ids, reliance = graded_records(args.runs, args.benchmarks, args.labels)
    tables = write_diagnostics_tables(records, args.tables_dir, ids=ids, n_resamples=args.resamples, seed=args.seed)
    agreement = reliance_agreement(tables["items"][tables["items"]["id"].isin(reliance)], reliance)
    write_table(agreement, Path(args.tables_dir) / "diagnostics_reliance", float_format="%.4g", formats=("csv", "md"))
    Path(args.figures_dir).mkdir(parents=True, exist_ok=True)
    write_diagnostics_figures(tables["metrics"], args.figures_dir)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("diagnose", help="text-prior and audio-reliance tables and figures from condition runs")
    p.add_argument("--runs", type=json_arg, required=True, help="JSON list of {model, benchmark, condition, path}")
    p.add_argument("--benchmarks", type=json_arg, required=True,
                   help="JSON: name -> {file, kind, audio_root, on_bad_item, label}")
    p.add_argument("--labels", type=json_arg, required=True, help="JSON: model name -> {label, ...}")
    p.add_argument("--tables-dir", default="results/tables")
    p.add_argument("--figures-dir", default="results/figures/diagnostics")
    add_bootstrap(p)
    p.set_defaults(func=cmd_diagnose)
