"""`akb` commands that read, check, fetch or make data: question banks, audio benchmarks, the
synthetic suite and DeSTA's training seeds."""

from __future__ import annotations

import logging
from pathlib import Path

from akb.config import schema_default
from akb.job_env import set_threads
from akb.options import add_benchmark_source, add_model_runtime, benchmark_kinds, json_arg, load_audio_items

log = logging.getLogger("akb")


def cmd_validate_bank(args) -> int:
    from akb.data.bank import check_items, normalise_records, read_records, resolve_source
    from akb.data.cues import audit_bank

    source = resolve_source(args.file)
    items = normalise_records(read_records(source, args.format, args.split), source, args.columns)
    problems = [str(p) for p in check_items(items, n_options=args.n_options)]
    audit = audit_bank(items, max_gain=schema_default("bank.audit.max_gain"),
                       letter_tolerance=schema_default("bank.audit.letter_tolerance"))  # no model: cues, letters
    problems += [f"cue audit: {failure}" for failure in audit.failures]
    print("".join(f"{source}: {p}\n" for p in problems) + audit.table())
    print(f"{source}: {len(items)} items, {len({it.category for it in items})} categories, "
          f"{len({(it.category, it.subcategory) for it in items})} subcategories, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_audit_bank(args) -> int:
    from akb.bankgen.audit import audit_bank_file
    from akb.io import write_json

    set_threads(args.threads)
    items, audit = audit_bank_file(args.file, args.format, args.columns, args.split, embedding=args.embedding,
                                   models=args.model, packaged_root=args.packaged_root, max_gain=args.max_gain,
                                   letter_tolerance=args.letter_tolerance,
                                   duplicate_threshold=args.duplicate_threshold)
    print(f"{args.file}: {len(items)} items\n{audit.table()}", flush=True)
    if args.out:
        write_json(args.out, audit.to_json())
    return 0 if audit.passed else 1


def cmd_prepare_bank(args) -> int:
    from akb.data.bank import find_warnings, load_bank
    from akb.io import write_jsonl

    items = load_bank(args.source, args.format, args.columns, args.split)
    for problem in find_warnings(items):
        log.warning("%s: %s", args.source, problem)
    items = items[: args.limit] if args.limit else items
    write_jsonl(args.out, (it.to_bank_record() for it in items))
    log.info("%s: %d items written to %s", args.source, len(items), args.out)
    return 0


def cmd_fetch_benchmark(args) -> int:
    from akb.data.fetch import fetch_benchmark

    fetch_benchmark(args.name, Path(args.out_dir), revision=args.revision, audio_sha256=args.audio_sha256,
                    keep_downloads=args.keep_downloads)
    return 0


def cmd_import_hf_benchmark(args) -> int:
    from akb.data.hf_bench import export_hf_benchmark

    export_hf_benchmark(args.source, args.out_dir, args.split, args.kind)
    return 0


def cmd_validate_audio_benchmark(args) -> int:
    from akb.data.audio_bench import LEFT_OUT
    from akb.io import write_json

    items, problems = load_audio_items(args, args.check_audio)
    left_out = sum(p.severity == LEFT_OUT for p in problems)  # MMAU-Pro's items that are not multiple choice
    domains = sorted({it.domain for it in items})
    write_json(args.out, {"benchmark": args.benchmark, "items": len(items), "domains": domains,
                          "left_out": left_out, "problems": [vars(p) for p in problems]})
    return 0


def cmd_generate_synthetic(args) -> int:
    from akb.data.synthetic import generate_suite

    generate_suite(Path(args.out_dir), args.seed, args.n_test, args.n_train, speech_engine=args.speech_engine)
    return 0


def cmd_convert_desta_seeds(args) -> int:
    from akb.data.desta_aqa import DestaSettings, convert

    settings = DestaSettings.from_config({
        "source": args.source, "data_files": args.data_files, "revision": args.revision,
        "audio_roots": args.audio_roots, "on_missing": args.on_missing, "max_rows": args.max_rows,
        "per_dataset_max": args.per_dataset_max, "sample_seed": args.sample_seed,
    })  # fmt: skip
    convert(settings, args.out, args.report_dir)
    return 0


def _bank_source(p) -> None:
    p.add_argument("--format", default="auto", choices=["auto", "json", "jsonl", "csv", "hf"])
    p.add_argument("--split", default="test", help="split of a Hugging Face dataset")
    p.add_argument("--columns", type=json_arg, default={}, help="JSON column mapping (see config schema)")


def add_commands(sub) -> None:
    p = sub.add_parser("validate-bank", help="check a question bank: schema, ids, options, letter balance, duplicates, "
                       "and the cue table (akb audit-bank without models or embeddings)")
    p.add_argument("file", help="bank file, `builtin`, or hf://org/dataset")
    p.add_argument("--n-options", type=int, default=4)
    _bank_source(p)
    p.set_defaults(func=cmd_validate_bank)

    p = sub.add_parser("audit-bank", help="how well answering without the knowledge scores (option length, numeric "
                       "position, absolute words, stem words), letter balance per subcategory, near-duplicates; "
                       "exit 1 when a threshold (config bank.audit) is exceeded")
    p.add_argument("file", help="bank file, `builtin`, or hf://org/dataset")
    _bank_source(p)
    p.add_argument("--max-gain", type=float, default=schema_default("bank.audit.max_gain"),
                   help="percentage points a cue-only strategy may score above chance")
    p.add_argument("--letter-tolerance", type=int, default=schema_default("bank.audit.letter_tolerance"))
    p.add_argument("--embedding", default=schema_default("bank.audit.embedding"),
                   help="near-duplicates by this embedding: a packaged model name, a model folder, tfidf, or none")
    p.add_argument("--duplicate-threshold", type=float, default=schema_default("bank.audit.duplicate_threshold"))
    p.add_argument("--model", type=json_arg, action="append", default=[],
                   help="a `models` entry as JSON (repeatable): the model answers from the options alone, the "
                        "question removed (by option log-likelihood); its accuracy is one more cue-only strategy")
    add_model_runtime(p, gpus=False)
    p.add_argument("--out", default=None, help="also write the audit as JSON here")
    p.set_defaults(func=cmd_audit_bank)

    p = sub.add_parser("prepare-bank", help="load and check a bank, write it normalised to JSONL")
    p.add_argument("--source", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", required=True)
    _bank_source(p)
    p.set_defaults(func=cmd_prepare_bank)

    p = sub.add_parser("fetch-benchmark", help="download an audio benchmark (metadata + clips) from its release")
    p.add_argument("--name", required=True, help="mmau-test-mini or mmar")
    p.add_argument("--out-dir", required=True, help="folder for the metadata file and the clip folder")
    p.add_argument("--revision", default=None, help="hub revision of the audio file (default: the pinned one)")
    p.add_argument("--audio-sha256", default=None, help="expected sha256 of the audio archive")
    p.add_argument("--keep-downloads", action="store_true", help="keep the downloaded archive in OUT_DIR/.downloads")
    p.set_defaults(func=cmd_fetch_benchmark)

    p = sub.add_parser("import-hf-benchmark", help="an audio benchmark's Hugging Face copy (hf://org/name or parquet "
                       "with embedded audio) written in the official layout")
    p.add_argument("--source", required=True, help="hf://org/name, a parquet file or a folder of them")
    p.add_argument("--split", default="test", help="split of a hub dataset")
    p.add_argument("--kind", default="auto", choices=benchmark_kinds(clip_lists=False))
    p.add_argument("--out-dir", required=True, help="gets benchmark.json and audio/")
    p.set_defaults(func=cmd_import_hf_benchmark)

    p = sub.add_parser("validate-audio-benchmark", help="check an audio benchmark before any model runs")
    add_benchmark_source(p)
    p.add_argument("--check-audio", choices=["header", "decode"], default="header",
                   help="header: each clip exists and opens, not cut short (fast); decode: also NaN samples "
                        "(errors), silent and clipped clips (warnings)")
    p.add_argument("--out", required=True, help="validation report (JSON)")
    p.set_defaults(func=cmd_validate_audio_benchmark)

    p = sub.add_parser("generate-synthetic", help="the synthetic audio suite (MMAU format, 16 kHz WAV)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=schema_default("synthetic.seed"))
    p.add_argument("--n-test", type=int, default=schema_default("synthetic.n_test"))
    p.add_argument("--n-train", type=int, default=schema_default("synthetic.n_train"))
    p.add_argument("--speech-engine", default=schema_default("synthetic.speech_engine"),
                   choices=["formant", "auto", "espeak-ng"],
                   help="formant (numpy only): the same suite on every machine; auto / espeak-ng use espeak-ng "
                        "where installed (machine-dependent)")
    p.set_defaults(func=cmd_generate_synthetic)

    p = sub.add_parser("convert-desta-seeds", help="DeSTA-AQA5M rows -> seed JSONL for `akb distill`, clips checked "
                                                   "under each source corpus's folder, with a per-dataset report")
    p.add_argument("--source", required=True, help="hub id (DeSTA-ntu/DeSTA-AQA5M-FROM-Llama3.1-8B-Instruct), "
                                                   "or a local JSONL/parquet file or folder")
    p.add_argument("--data-files", nargs="+", default=None, help="only these files of the source (names or globs)")
    p.add_argument("--revision", default=None, help="hub revision")
    p.add_argument("--audio-roots", type=json_arg, required=True,
                   help='JSON {"<dataset>": "<folder>" or null}: where each source corpus\'s clips are')
    p.add_argument("--on-missing", choices=["error", "skip"],
                   default=schema_default("grounded.distill.desta_aqa.on_missing"))
    p.add_argument("--max-rows", type=int, default=None, help="total rows, shared in proportion to each dataset's")
    p.add_argument("--per-dataset-max", type=json_arg, default={}, help='JSON {"<dataset>": n}')
    p.add_argument("--sample-seed", type=int, default=schema_default("grounded.distill.desta_aqa.sample_seed"))
    p.add_argument("--out", required=True, help="the seed JSONL")
    p.add_argument("--report-dir", default=None, help="report.csv, report.md, skipped.csv; default: beside --out")
    p.set_defaults(func=cmd_convert_desta_seeds)
