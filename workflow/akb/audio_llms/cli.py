"""`akb evaluate-audio-llm`: a published audio LLM (an `audio_llms` entry) answers each audio
question under one diagnostic condition."""

from __future__ import annotations

from akb.job_env import set_threads
from akb.options import (
    MIN_FRAGMENT_SAMPLES, add_benchmark_source, add_generation, add_model_runtime, add_prompt_style, json_arg,
    load_audio_items
)


def cmd_evaluate_audio_llm(args) -> int:
    from akb.audio_llms.evaluate import evaluate_audio_llm

    set_threads(args.threads)
    evaluate_audio_llm(load_audio_items(args)[0], args.audio_llm, args.condition, args.out,
                       prompt_style=args.prompt_style, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       text_backbone=args.text_backbone, packaged_root=args.packaged_root,
                       min_fragment_samples=args.min_fragment_samples, gpus=args.gpus)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("evaluate-audio-llm", help="a published audio LLM answers each audio question (one "
                                                  "condition); resumable")
    add_benchmark_source(p)
    p.add_argument("--audio-llm", type=json_arg, required=True, help="the `audio_llms` config entry as JSON")
    p.add_argument("--condition", required=True, help="full, none, backbone or fragment-N-k")
    p.add_argument("--text-backbone", type=json_arg, default=None,
                   help="the text backbone's `models` entry as JSON (for --condition backbone)")
    p.add_argument("--min-fragment-samples", type=int, default=MIN_FRAGMENT_SAMPLES)
    add_prompt_style(p)
    add_generation(p, "audio_llms.[]", mode=False)  # published audio LLMs answer by generation only
    add_model_runtime(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate_audio_llm)
