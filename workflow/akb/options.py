"""Command-line options shared by several `akb` sub-commands, defined once: each stage's cli module
builds its parsers from these, so a default (the packaged-model folder, a batch size, the bootstrap
seed) has one home and every command that reads an audio benchmark reads it the same way."""

from __future__ import annotations

import argparse
import json

from akb.config import schema_default
from akb.data.formats import FORMATS
from akb.models import PACKAGED_ROOT
from akb.probe.run import MODES as ANSWER_MODES

MIN_FRAGMENT_SAMPLES = schema_default("diagnostics.min_fragment_samples")  # = conditions.MIN_FRAGMENT_SAMPLES (tested)
OUTSIDE_ROOT_HELP = "accept clip paths leading outside the audio root (absolute, '..', a symlink out)"


def benchmark_kinds(clip_lists: bool = True) -> list[str]:
    """`--kind` choices, read from the format registry as a parser is built (format modules are
    light), so a format added in akb/data/formats/ is a choice at once: "auto" (told from the
    records) or a registered kind; `clip_lists=False` leaves out formats whose items hold several
    clips (MMAU-Pro), for commands that write one clip per item."""
    return ["auto", *(kind for kind, fmt in FORMATS.items() if clip_lists or not fmt.clip_list)]


def json_arg(text: str):
    """argparse type: a JSON value (config entries travel from the rules to the jobs as JSON)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e.msg}") from None


def shard_arg(text: str):
    from akb.probe.shards import parse_shard  # light: no model code

    return parse_shard(text)


def add_threads(p) -> None:
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def add_model_runtime(p, gpus: bool = True) -> None:
    """Where packaged models live, how many CPU threads torch gets and (`gpus`) how many GPUs the
    job has: every job that loads a model."""
    p.add_argument("--packaged-root", default=str(PACKAGED_ROOT), help="folder of converted packaged models")
    add_threads(p)
    if not gpus:
        return
    p.add_argument("--gpus", type=int, default=None,
                   help="GPUs of this job (the rule's resources.gpu): a model is spread over them when > 1 "
                        "(akb.models.hf.device_map_for, vLLM's tensor parallelism); default: the entry's "
                        "resources.gpu")


def add_generation(p, settings: str = "probe", mode: bool = True) -> None:
    """How a text model answers: by option log-likelihood or generation, in batches; the defaults are
    the config schema's for `settings` (e.g. "probe", "grounded.distill", "audio_llms.[]")."""
    if mode:
        p.add_argument("--mode", choices=ANSWER_MODES, default=schema_default("probe.mode"))
    p.add_argument("--batch-size", type=int, default=schema_default(f"{settings}.batch_size"))
    p.add_argument("--max-new-tokens", type=int, default=schema_default(f"{settings}.max_new_tokens"))


def add_shard(p, merge_hint: str = "see merge-shards") -> None:
    p.add_argument("--shard", type=shard_arg, default=None, metavar="K/N",
                   help=f"only shard K of N (whole batches of the unsharded run; {merge_hint})")


def add_bootstrap(p) -> None:
    p.add_argument("--resamples", type=int, default=schema_default("figures.bootstrap_resamples"),
                   help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=schema_default("seed"))


def add_prompt_style(p) -> None:
    from akb.probe.prompts import PROMPT_STYLES  # light: the item type only

    p.add_argument("--prompt-style", choices=sorted(PROMPT_STYLES), default="lettered",
                   help="how generated questions are written: lettered options, DeSTA2.5's quoted ones, or "
                        "All That Glitters' 'A: text' options answered with the option text")


def add_benchmark_source(p, required: bool = True) -> None:
    """Where an audio benchmark's items are and how they are checked (the options of
    `load_audio_items`); --benchmark itself is added when `required`."""
    if required:
        p.add_argument("--benchmark", required=True,
                       help="MMAU, MMAR or MMAU-Pro file (JSON array, JSONL or parquet, e.g. MMAU-Pro's test.parquet)")
    p.add_argument("--kind", default="auto", choices=benchmark_kinds())
    p.add_argument("--audio-root", default=None, help="default: the benchmark file's directory")
    p.add_argument("--on-bad-item", default="error", choices=["error", "skip"])
    p.add_argument("--allow-outside-root", action="store_true", help=OUTSIDE_ROOT_HELP)


def load_audio_items(args, check_audio: str = "header"):
    """(items, problems) of the benchmark named by `add_benchmark_source`'s options, validated the
    same way by every command that reads one."""
    from akb.data.audio_bench import load_audio_benchmark

    return load_audio_benchmark(args.benchmark, args.kind, args.audio_root, args.on_bad_item,
                                check_audio=check_audio, allow_outside_root=args.allow_outside_root)
