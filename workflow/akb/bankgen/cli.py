"""`akb bankgen-*`: one sub-command per step of building a benchmark (see akb.bankgen)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from akb.io import read_jsonl, write_json, write_jsonl
from akb.job_env import set_threads
from akb.options import add_model_runtime, json_arg

log = logging.getLogger("akb")


def cmd_generate(args) -> int:
    from akb.bankgen.generate import generate_bank_candidates

    set_threads(args.threads)
    generate_bank_candidates(args.settings, args.model, args.out, args.rejects, gpus=args.gpus, seed=args.seed,
                             packaged_root=args.packaged_root)
    return 0


def cmd_screen(args) -> int:
    from akb.bankgen.embed import load_embedder
    from akb.bankgen.screen import screen_candidates
    from akb.data.bank import load_bank

    set_threads(args.threads)
    s = args.settings
    candidates = [c for path in args.candidates for c in read_jsonl(path)]
    embedder = load_embedder(s["embedding"]["model"], args.packaged_root)
    records, removed = screen_candidates(candidates, load_bank(s["existing_bank"]), embedder,
                                         s["embedding"]["threshold"], args.seed, s["name"])
    write_jsonl(args.removed, removed)
    write_jsonl(args.out, records)
    return 0


def cmd_report(args) -> int:
    from akb.bankgen.report import apply_crosscheck, build_report, report_markdown
    from akb.io import atomic_path

    predictions = {model: read_jsonl(path) for model, path in args.predictions}
    kept, dropped = apply_crosscheck(read_jsonl(args.screened), predictions, args.drop)
    candidates = {Path(p).stem: read_jsonl(p) for p in args.candidates}
    rejects = {Path(p).stem: read_jsonl(p) for p in args.rejects}
    report = build_report(candidates, rejects, read_jsonl(args.removed) + dropped, kept, predictions)
    write_json(args.report, report)
    with atomic_path(args.report_md) as tmp:
        tmp.write_text(report_markdown(report), encoding="utf-8")
    write_jsonl(args.out, kept)
    return 0


def cmd_review_sheet(args) -> int:
    from akb.bankgen.review import write_review_csv, write_review_html

    records = read_jsonl(args.checked)
    write_review_csv(records, args.csv)
    write_review_html(records, args.html, args.title)
    return 0


def cmd_import(args) -> int:
    from akb.bankgen.review import apply_decisions, read_decisions

    records = read_jsonl(args.checked)
    verified, counts = apply_decisions(records, read_decisions(args.decisions, records), args.decisions)
    if args.require_all and counts["undecided"]:
        raise ValueError(f"{args.decisions}: {counts['undecided']} item(s) still undecided")
    log.info("%s: %s", args.decisions, counts)
    write_json(args.summary, {"decisions": args.decisions, **counts, "verified": len(verified)})
    write_jsonl(args.out, verified)
    return 0


def cmd_release(args) -> int:
    from akb.bankgen.release import release_bank

    release_bank(args.bank, args.name, args.version, args.out, args.manifest, strict=args.strict)
    return 0


def _model_path(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL=PATH")
    return name, path


def add_commands(sub) -> None:
    def settings(p, gpus=True):
        p.add_argument("--settings", type=json_arg, required=True, help="the config's `bankgen` block as JSON")
        p.add_argument("--seed", type=int, default=0)
        add_model_runtime(p, gpus)

    p = sub.add_parser("bankgen-generate", help="a generator writes candidate questions per subcategory; cached")
    settings(p)
    p.add_argument("--model", type=json_arg, required=True, help="the generator's config entry as JSON")
    p.add_argument("--out", required=True, help="candidates (JSONL)")
    p.add_argument("--rejects", required=True, help="malformed generations with the reason (JSONL)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("bankgen-screen", help="format, near-duplicate and letter-balance checks of candidates")
    settings(p, gpus=False)  # its embedding model runs on the CPU
    p.add_argument("--candidates", nargs="+", required=True)
    p.add_argument("--out", required=True, help="surviving candidates as bank records (JSONL)")
    p.add_argument("--removed", required=True, help="removed candidates with the check and reason (JSONL)")
    p.set_defaults(func=cmd_screen)

    p = sub.add_parser("bankgen-report", help="cross-check flags and the report of what was removed and why")
    p.add_argument("--screened", required=True)
    p.add_argument("--predictions", type=_model_path, nargs="*", default=[], metavar="MODEL=PATH",
                   help="each cross-checking model's probe predictions on the screened candidates")
    p.add_argument("--drop", nargs="*", default=[], help="flags that remove a candidate")
    p.add_argument("--candidates", nargs="+", required=True, help="generated candidates, one file per generator")
    p.add_argument("--rejects", nargs="+", required=True, help="rejects, one file per generator")
    p.add_argument("--removed", required=True)
    p.add_argument("--out", required=True, help="candidates for review (JSONL)")
    p.add_argument("--report", required=True, help="report (JSON)")
    p.add_argument("--report-md", required=True, help="report (Markdown)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bankgen-review-sheet", help="review sheet: CSV and a self-contained HTML page")
    p.add_argument("--checked", required=True)
    p.add_argument("--title", default="Review of generated questions")
    p.add_argument("--csv", required=True)
    p.add_argument("--html", required=True)
    p.set_defaults(func=cmd_review_sheet)

    p = sub.add_parser("bankgen-import", help="merge reviewer decisions into a verified bank with provenance")
    p.add_argument("--checked", required=True, help="the candidates the review sheet was made from")
    p.add_argument("--decisions", required=True, help="decisions JSON (from the HTML page) or filled-in review CSV")
    p.add_argument("--require-all", action="store_true", help="fail while any item is undecided")
    p.add_argument("--out", required=True, help="verified bank (JSONL)")
    p.add_argument("--summary", required=True, help="counts of decisions (JSON)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("bankgen-release", help="validate a verified bank, version it and record its sha256")
    p.add_argument("--bank", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--strict", action="store_true", help="validator warnings stop the release too")
    p.add_argument("--out", required=True, help="released bank file")
    p.add_argument("--manifest", required=True, help="manifest (JSON): version, sha256, counts, validation")
    p.set_defaults(func=cmd_release)
