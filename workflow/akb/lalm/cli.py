"""`akb` commands of the audio-grounded stage: distillation data, Whisper transcripts, training and
evaluation of this project's DeSTA-style audio LLMs."""

from __future__ import annotations

import argparse
from pathlib import Path

from akb.config import schema_default
from akb.job_env import set_threads
from akb.options import (
    MIN_FRAGMENT_SAMPLES, add_benchmark_source, add_generation, add_model_runtime, add_prompt_style, add_shard,
    add_threads, json_arg, load_audio_items
)

TRANSCRIPTS_HELP = "transcripts from `akb transcribe` (needed when grounded.use_transcript is on)"


def cmd_distill(args) -> int:
    """Distillation answers (one shard's, with --shard), or with --merge the shards' rows merged into
    the file one job writes (no model is loaded)."""
    from akb.lalm.distill import distill_shard, distillation_requests, read_seeds
    from akb.models import ModelSpec, load_model
    from akb.probe.shards import merge_shards

    set_threads(args.threads)
    seeds = read_seeds(args.seeds, args.audio_root, args.item_questions)
    requests = distillation_requests(seeds, args.prompts, args.prompts_per_clip, args.seed, args.question_mode,
                                     args.own_prompt)
    if args.merge:
        merge_shards(args.merge, [r["id"] for r in requests], args.out)
        return 0
    generation_only = not any("choices" in r for r in requests)  # questions asked by log-likelihood need transformers
    spec = ModelSpec.from_config(args.model, args.gpus)
    model = load_model(spec, Path(args.packaged_root), generation_only=generation_only)
    distill_shard(model, requests, args.out, args.batch_size, args.max_new_tokens, shard=args.shard)
    return 0


def cmd_transcribe(args) -> int:
    """Whisper transcripts of the training clips (--seeds) or of a benchmark's clips under a
    diagnostic condition (--benchmark), one file shared by every backbone."""
    from akb.lalm.transcripts import training_clips, transcribe_clips

    set_threads(args.threads)
    if (args.seeds is None) == (args.benchmark is None):
        raise ValueError("give the clips to transcribe: --seeds (training) or --benchmark, not both")
    if args.seed_transcripts and args.seeds is None:
        raise ValueError("--seed-transcripts is for the training clips (--seeds)")
    if args.seeds is not None:
        (audio_of, given), condition = training_clips(args.seeds, args.audio_root, args.seed_transcripts), "full"
    else:
        audio_of, given, condition = {it.id: it.audio for it in load_audio_items(args)[0]}, None, args.condition
    transcribe_clips(args.whisper, audio_of, args.out, args.batch_size, condition, args.min_fragment_samples,
                     given=given, vad=args.vad)
    return 0


def cmd_train(args) -> int:
    from akb.lalm.train import train_backbone

    train_backbone(args.model, args.grounded, args.distill, args.out, args.state_dir,
                   transcripts_path=args.transcripts, packaged_root=args.packaged_root, threads=args.threads)
    return 0


def cmd_evaluate(args) -> int:
    from akb.lalm.evaluate import evaluate_lalm

    set_threads(args.threads)
    evaluate_lalm(load_audio_items(args)[0], args.model, args.grounded, args.condition, args.out,
                  checkpoint=args.checkpoint, transcripts=args.transcripts, mode=args.mode,
                  batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, prompt_style=args.prompt_style,
                  min_fragment_samples=args.min_fragment_samples, packaged_root=args.packaged_root, gpus=args.gpus)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("distill", help="self-distillation data: the backbone answers prompts from seed descriptions")
    p.add_argument("--seeds", required=True, help="MMAU-format JSON with metadata.summary, or seed JSONL")
    p.add_argument("--audio-root", default=None)
    p.add_argument("--prompts", type=json_arg, required=True, help="JSON list of prompts to sample from")
    p.add_argument("--prompts-per-clip", type=int, default=schema_default("grounded.distill.prompts_per_clip"))
    p.add_argument("--item-questions", action=argparse.BooleanOptionalAction, default=True,
                   help="also ask each clip's own benchmark question (MMAU-format seeds)")
    p.add_argument("--question-mode", choices=["loglik", "generate"], default="generate",
                   help="ask own questions as the evaluation will: answered by option log-likelihood or generated")
    p.add_argument("--own-prompt", choices=["add", "replace"], default="add",
                   help="a seed row's own prompt is asked besides the sampled ones (add) or instead of them "
                        "(replace: DeSTA2.5, one request per row)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=json_arg, required=True, help="the backbone's config entry as JSON")
    add_generation(p, "grounded.distill", mode=False)
    add_model_runtime(p)
    parts = p.add_mutually_exclusive_group()
    add_shard(parts, merge_hint="merge with --merge")
    parts.add_argument("--merge", nargs="+", default=None, metavar="PART",
                       help="merge these shard files (any order) into --out, the unsharded run's file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("transcribe", help="Whisper transcripts of the training clips or of a benchmark's clips "
                                          "under a condition, shared by every backbone; resumable")
    p.add_argument("--seeds", default=None, help="the training clips: the seeds `akb distill` reads")
    p.add_argument("--benchmark", default=None, help="or an audio benchmark's clips (MMAU or MMAR file)")
    add_benchmark_source(p, required=False)
    p.add_argument("--condition", default="full", help="--benchmark: full, fragment-N-k, silence or noise")
    p.add_argument("--min-fragment-samples", type=int, default=MIN_FRAGMENT_SAMPLES)
    p.add_argument("--whisper", required=True, help="Whisper checkpoint (grounded.encoder.source)")
    p.add_argument("--seed-transcripts", action="store_true",
                   help="--seeds: keep a seed row's own `transcript`; Whisper only for clips without one")
    p.add_argument("--vad", action="store_true",
                   help="Silero voice activity first: a clip without speech gets no transcript (DeSTA2.5)")
    p.add_argument("--batch-size", type=int, default=schema_default("grounded.transcribe.batch_size"))
    add_threads(p)
    p.add_argument("--out", required=True, help='JSONL, one {"id", "transcript"} per clip')
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("train", help="train an audio LLM on distillation data; resumes from --state-dir")
    p.add_argument("--distill", required=True)
    p.add_argument("--transcripts", default=None, help=TRANSCRIPTS_HELP)
    p.add_argument("--model", type=json_arg, required=True, help="the backbone's config entry as JSON")
    p.add_argument("--grounded", type=json_arg, required=True, help="the config's `grounded` block as JSON")
    add_model_runtime(p, gpus=False)  # its GPUs are torchrun's processes, one each (akb.lalm.parallel)
    p.add_argument("--state-dir", required=True, help="periodic checkpoints, kept until training ends")
    p.add_argument("--out", required=True, help="checkpoint directory (trainable weights + recipe)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="an audio LLM answers each audio question (one condition); resumable")
    add_benchmark_source(p)
    p.add_argument("--checkpoint", default=None, help="trained audio LLM (not needed for --condition backbone)")
    p.add_argument("--model", type=json_arg, required=True, help="the backbone's config entry as JSON")
    p.add_argument("--grounded", type=json_arg, required=True, help="the config's `grounded` block as JSON")
    p.add_argument("--condition", default="full", help="full, none, backbone, fragment-N-k, silence or noise")
    p.add_argument("--min-fragment-samples", type=int, default=MIN_FRAGMENT_SAMPLES)
    p.add_argument("--transcripts", default=None, help=TRANSCRIPTS_HELP + ", for the same condition")
    add_generation(p, "grounded.evaluate")
    add_prompt_style(p)
    add_model_runtime(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate)
