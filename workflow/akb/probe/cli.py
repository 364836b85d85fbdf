"""`akb probe` (a text LLM answers the question bank) and `akb merge-shards` (a sharded probe,
cascade or distillation run put back together)."""

from __future__ import annotations

from pathlib import Path

from akb.job_env import set_threads
from akb.options import add_benchmark_source, add_generation, add_model_runtime, add_shard, json_arg, load_audio_items


def cmd_probe(args) -> int:
    from akb.data.bank import load_bank
    from akb.models import ModelSpec, load_model
    from akb.probe.shards import probe_shard

    set_threads(args.threads)
    items = load_bank(args.bank)
    model = load_model(ModelSpec.from_config(args.model, args.gpus), Path(args.packaged_root),
                       generation_only=args.mode == "generate")
    probe_shard(model, items, args.out, args.mode, args.batch_size, args.max_new_tokens, shard=args.shard)
    return 0


def cmd_merge_shards(args) -> int:
    from akb.data.bank import load_bank
    from akb.probe.shards import merge_shards

    items = load_bank(args.bank) if args.bank else load_audio_items(args)[0]
    merge_shards(args.parts, [item.id for item in items], args.out)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("probe", help="answer every bank item with one model; resumable")
    p.add_argument("--bank", required=True, help="prepared bank (JSONL)")
    p.add_argument("--model", type=json_arg, required=True, help="the model's config entry as JSON")
    add_generation(p)
    add_model_runtime(p)
    add_shard(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("merge-shards", help="merge shard files of probe/cascade into the unsharded run's file")
    p.add_argument("--parts", nargs="+", required=True, help="the shards' JSONL files, in any order")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--bank", help="prepared bank (JSONL) the probe shards answered")
    source.add_argument("--benchmark", help="audio benchmark the cascade shards answered")
    add_benchmark_source(p, required=False)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_merge_shards)
