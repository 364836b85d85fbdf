"""`akb caption` (a captioner describes every clip) and `akb cascade` (a text LLM answers each audio
question from its clip's caption)."""

from __future__ import annotations

from pathlib import Path

from akb.config import schema_default
from akb.job_env import set_threads
from akb.options import (
    add_benchmark_source, add_generation, add_model_runtime, add_prompt_style, add_shard, json_arg, load_audio_items
)


def cmd_caption(args) -> int:
    from akb.captioners import load_captioner
    from akb.cascade.caption import caption_items

    items, _ = load_audio_items(args)
    caption_items(load_captioner(args.captioner), items, args.out, args.batch_size, entry=args.captioner)
    return 0


def cmd_cascade(args) -> int:
    from akb.cascade.caption import read_captions
    from akb.models import ModelSpec, load_model
    from akb.probe.prompts import styled_spec
    from akb.probe.shards import probe_shard

    set_threads(args.threads)
    items, _ = load_audio_items(args)
    spec = styled_spec(ModelSpec.from_config(args.model, args.gpus), args.prompt_style)
    model = load_model(spec, Path(args.packaged_root), generation_only=args.mode == "generate")
    probe_shard(model, items, args.out, args.mode, args.batch_size, args.max_new_tokens,
                descriptions=read_captions(args.captions), shard=args.shard, style=args.prompt_style)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("caption", help="describe every clip with a captioner; resumable")
    add_benchmark_source(p)
    p.add_argument("--captioner", type=json_arg, required=True, help="the captioner's config entry as JSON")
    p.add_argument("--batch-size", type=int, default=schema_default("captioners.[].batch_size"))
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("cascade", help="a text LLM answers each audio question from its caption; resumable")
    add_benchmark_source(p)
    p.add_argument("--captions", required=True)
    p.add_argument("--model", type=json_arg, required=True, help="the model's config entry as JSON")
    add_generation(p)
    add_prompt_style(p)
    add_model_runtime(p)
    add_shard(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_cascade)
