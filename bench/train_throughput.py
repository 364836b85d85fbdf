"""Training throughput and peak memory of the audio LLM, and batched evaluation against a per-item loop.

Two measurements on one model (akb.lalm.grounded.build_lalm on a configured backbone, with the
config's `grounded` recipe), in one process:

    train     N optimizer steps, after W warm-up steps that are not timed, of what akb.lalm.train does
              per step: LALM.loss on a micro-batch (log-mel features and tokenisation included, as
              training pays for them), backward, gradient clipping and an AdamW step; bf16 autocast
              on GPUs that support it, as in training. Items are real clips of the synthetic train
              split with the distillation prompts and each clip's metadata.summary as the response.
              Reported: seconds per step, samples and (non-padding) tokens per second, peak memory.
    evaluate  the same K test items answered by GroundedLM (the model the workflow evaluates), once
              by a per-item loop and once by akb.probe.run.probe (length-sorted batches, as the
              workflow runs it), for generate and for loglik:
                  generate  loop:     one GroundedLM.generate([prompt]) per item (batch size 1)
                            batched:  probe(mode="generate", batch_size=B)
                  loglik    loop:     one GroundedLM.loglikelihood([request]) per (item, option)
                                      (batch size 1)
                            per-item: one loglikelihood call per item holding its options
                            batched:  probe(mode="loglik", batch_size=B), B sequences a forward pass
              Reported: items per second, the speed-up over the loop, and whether the predictions
              (and loglik scores, generated texts) agree with the loop's.

Peak memory is measured per phase. CPU: the process's peak resident set size (VmHWM), reset at the
start of each phase through /proc/self/clear_refs where Linux allows it; elsewhere getrusage's
ru_maxrss, a lifetime peak that then includes model loading (the table says which). CUDA:
torch.cuda.max_memory_allocated, reset at the start of each phase (tensors only; reserved memory
is reported beside it). Clips are loaded, and transcribed by Whisper when the recipe reads
transcripts, before any timer starts.

Usage (from the repository root; HF_HUB_OFFLINE=1 keeps transformers off the network):

    # smoke test: tiny random Qwen3 backbone, tiny connector, a few steps (seconds on a CPU)
    python bench/train_throughput.py --tiny --steps 2 --warmup-steps 1 --batch-size 2 \\
        --eval-items 4 --eval-batch-size 8 --max-new-tokens 4 --threads 2
    # the demo model (SmolLM2-135M + Whisper tiny.en, the config's connector)
    python bench/train_throughput.py --steps 20 --batch-size 8 --eval-items 64 --eval-batch-size 16 \\
        --threads 2 --json-out /tmp/train_throughput.json
    # a trained connector (its recipe is read from the checkpoint), on a GPU
    python bench/train_throughput.py --checkpoint results/grounded/smollm2-135m-instruct/checkpoint \\
        --device cuda --batch-size 32 --eval-batch-size 64

Without --checkpoint the connector is freshly initialised (then trained the few benchmark steps), so
evaluation accuracy is meaningless; throughput and agreement are not. Timings are wall-clock on
whatever else the machine is doing: pin --threads and run on an idle machine for numbers worth quoting.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Progress bars from the probe and training helpers would interleave with the table.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from akb.audio import load_audio  # noqa: E402
from akb.config import load_config_file, model_entry  # noqa: E402
from akb.data.audio_bench import load_audio_benchmark  # noqa: E402
from akb.data.items import MCQItem  # noqa: E402
from akb.io import read_jsonl  # noqa: E402
from akb.lalm.distill import read_seeds  # noqa: E402
from akb.lalm.grounded import Clip, GroundedLM, build_lalm, transcribe  # noqa: E402
from akb.lalm.processor import LALMItem  # noqa: E402
from akb.models import ModelSpec  # noqa: E402
from akb.probe.run import probe  # noqa: E402
from akb.probe.prompts import lettered_question, loglik_context  # noqa: E402
# The comparison with the per-item loop is the probe benchmark's (bench/ is on sys.path as the script's dir).
import probe_throughput  # noqa: E402
from probe_throughput import agreement, argmax_letter, describe, parsed_letter  # noqa: E402

TINY_BACKBONE = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}}
TINY_CONNECTOR = {"n_taps": 2, "qformer_layers": 1, "queries_per_tap": 4, "qformer_intermediate_size": 64}
DEFAULT_BACKBONE = "smollm2-135m-instruct"
MIB = 2**20
# Option log-probabilities closer than this are near-ties: a padded batch and a single sequence run
# different kernels, so float noise of this size may flip their argmax.


# ---- memory ----


def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of one phase: resident set size on the host, allocated tensors on a CUDA device."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rss_scope = "phase"
        self.rss_at_start = 0

    def start(self) -> None:
        gc.collect()
        try:  # hand freed heap back to the OS (glibc), so the phase starts from what is in use
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        try:  # "5" resets the peak RSS (VmHWM, and so ru_maxrss) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
            self.rss_scope = "phase"
        except OSError:
            self.rss_scope = "process lifetime"
        rss = _proc_status_kib("VmRSS")
        self.rss_at_start = rss * 1024 if rss is not None else 0

    def read(self) -> dict:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        hwm = _proc_status_kib("VmHWM")
        if hwm is not None:
            peak_rss = hwm * 1024
        else:  # ru_maxrss: KiB on Linux, bytes on macOS
            scale = 1 if sys.platform == "darwin" else 1024
            peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        report = {"peak_rss_mib": peak_rss / MIB, "rss_at_start_mib": self.rss_at_start / MIB,
                  "rss_scope": self.rss_scope}
        if self.device.type == "cuda":
            report |= {"cuda_peak_allocated_mib": torch.cuda.max_memory_allocated(self.device) / MIB,
                       "cuda_peak_reserved_mib": torch.cuda.max_memory_reserved(self.device) / MIB}
        return report


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- model and data ----


def backbone_spec(args: argparse.Namespace, config: dict) -> ModelSpec:
    if args.tiny:
        entry = dict(TINY_BACKBONE)
    elif args.backbone.lstrip().startswith("{"):
        entry = json.loads(args.backbone)
    else:
        entry = dict(model_entry(config, args.backbone))
    entry["device"] = args.device
    return ModelSpec.from_config(entry)


def grounded_settings(args: argparse.Namespace, config: dict) -> dict:
    settings = json.loads(json.dumps(config["grounded"]))  # a deep copy
    if args.tiny:
        settings["connector"] = dict(TINY_CONNECTOR)
    if args.transcripts != "recipe":
        settings["use_transcript"] = args.transcripts != "none"
    return settings


def load_clips(paths: list[str]) -> dict[str, np.ndarray]:
    return {path: load_audio(path) for path in dict.fromkeys(paths)}


def transcripts_for(args: argparse.Namespace, settings: dict, clips: dict[str, np.ndarray]) -> dict[str, str | None]:
    """Clip path -> transcript: Whisper's (as the workflow does), '' for --transcripts empty, None when
    the recipe reads none."""
    if not settings["use_transcript"]:
        return dict.fromkeys(clips)
    if args.transcripts == "empty":
        return dict.fromkeys(clips, "")
    paths = list(clips)
    texts = transcribe(settings["encoder"]["source"], [clips[p] for p in paths])
    return {p: t or "" for p, t in zip(paths, texts)}


def training_batches(args: argparse.Namespace, settings: dict) -> tuple[list[list[int]], list, list[str]]:
    """(index batches over the seeds, seeds, prompts): a seeded permutation of the train clips,
    cycled, cut into warm-up + timed micro-batches; prompts cycle through the distillation prompts."""
    seeds = read_seeds(args.train_file, item_questions=False)
    if not seeds:
        raise SystemExit(f"{args.train_file}: no training clips")
    n_batches = args.warmup_steps + args.steps
    needed = n_batches * args.batch_size
    rng = np.random.default_rng(args.seed)
    order = np.concatenate([rng.permutation(len(seeds)) for _ in range(-(-needed // len(seeds)))])[:needed]
    batches = [order[i * args.batch_size : (i + 1) * args.batch_size].tolist() for i in range(n_batches)]
    return batches, seeds, list(settings["distill"]["prompts"])


def eval_items(args: argparse.Namespace) -> list[MCQItem]:
    """K test items, a seeded sample (so lengths and option counts vary as in the benchmark), in file order."""
    items, _ = load_audio_benchmark(args.eval_file)
    if args.eval_items < len(items):
        keep = sorted(np.random.default_rng(args.seed).choice(len(items), args.eval_items, replace=False))
        items = [items[i] for i in keep]
    return items


# ---- training ----


def describe_transcripts(args: argparse.Namespace, settings: dict, transcripts: dict[str, str | None]) -> str:
    if not settings["use_transcript"]:
        return "off"
    if args.transcripts == "empty":
        return "on, empty"
    return f"on, Whisper ASR ({sum(bool(t) for t in transcripts.values())}/{len(transcripts)} non-empty)"


@dataclass
class TrainResult:
    steps: int
    batch_size: int
    seconds: float
    tokens: int  # non-padding tokens (audio vectors included) over the timed steps
    padded_tokens: int
    losses: list[float]
    prep_seconds_per_step: float  # processor alone (features + tokenisation), timed apart
    memory: dict
    bf16: bool

    @property
    def samples(self) -> int:
        return self.steps * self.batch_size

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)


def measure_training(lalm, batches: list[list[LALMItem]], warmup: int, settings: dict,
                     memory: PeakMemory) -> TrainResult:
    device = lalm.device
    train = settings["train"]
    params = [p for n, p in lalm.named_parameters() if lalm.is_trainable(n)]
    optimizer = torch.optim.AdamW(params, lr=train["lr"], betas=tuple(train["betas"]),
                                  weight_decay=train["weight_decay"])
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    lalm.train()

    def step(items: list[LALMItem]) -> float:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = lalm.loss(items)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())  # a host sync, as the training loop's logging makes

    memory.start()  # warm-up inside the phase: AdamW's state and the allocator's growth count
    for items in batches[:warmup]:
        step(items)
    sync(device)
    losses = []
    start = time.perf_counter()
    for items in batches[warmup:]:
        losses.append(step(items))
    sync(device)
    seconds = time.perf_counter() - start
    mem = memory.read()
    lalm.eval()

    tokens = padded = 0
    prep_start = time.perf_counter()
    for items in batches[warmup:]:
        batch = lalm.processor(items, train=True)
        tokens += int(batch.attention_mask.sum())
        padded += batch.attention_mask.numel()
    prep = (time.perf_counter() - prep_start) / max(len(batches) - warmup, 1)
    return TrainResult(len(batches) - warmup, len(batches[0]), seconds, tokens, padded, losses, prep, mem, use_bf16)


# ---- evaluation ----


@dataclass
class Run(probe_throughput.Run):
    """A probe-benchmark run, plus the model calls it made and its peak memory."""

    calls: int = 0
    memory: dict = field(default_factory=dict)


def _requests(model: GroundedLM, item: MCQItem) -> list[tuple[str, str]]:
    context = model.item_prompt(item, loglik_context(item))
    return [(context, model.continuation(c)) for c in item.choices]


def loop_generate(model: GroundedLM, items: list[MCQItem], max_new_tokens: int, memory: PeakMemory) -> Run:
    run = Run("generate", "loop", 0.0, {}, {})
    memory.start()
    start = time.perf_counter()
    for item in items:  # prompt building inside the timer: the batched probe pays for it too
        output = model.generate([model.item_prompt(item, lettered_question(item))], max_new_tokens)[0]
        letter = parsed_letter(item, output)
        run.predictions[item.id], run.correct[item.id], run.outputs[item.id] = (
            letter, letter == item.answer_letter, output)
        run.calls += 1
    sync(model.lalm.device)
    run.seconds = time.perf_counter() - start
    run.memory = memory.read()
    return run


def loop_loglik(model: GroundedLM, items: list[MCQItem], per_item: bool, memory: PeakMemory) -> Run:
    run = Run("loglik", "per-item" if per_item else "loop", 0.0, {}, {})
    memory.start()
    start = time.perf_counter()
    for item in items:
        requests = _requests(model, item)
        if per_item:
            results, run.calls = model.loglikelihood(requests), run.calls + 1
        else:
            results = [model.loglikelihood([r])[0] for r in requests]
            run.calls += len(requests)
        scores = [r.logprob for r in results]
        letter = argmax_letter(item, scores)
        run.predictions[item.id], run.correct[item.id], run.scores[item.id] = (
            letter, letter == item.answer_letter, scores)
    sync(model.lalm.device)
    run.seconds = time.perf_counter() - start
    run.memory = memory.read()
    return run


def batched(model: GroundedLM, items: list[MCQItem], mode: str, batch_size: int, max_new_tokens: int,
            memory: PeakMemory) -> Run:
    with tempfile.TemporaryDirectory(prefix="akb-bench-") as tmp:
        out = Path(tmp) / f"{mode}.jsonl"
        memory.start()
        start = time.perf_counter()
        probe(model, items, out, mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens)
        sync(model.lalm.device)
        seconds = time.perf_counter() - start
        mem = memory.read()
        rows = read_jsonl(out)
    if mode == "generate":
        calls = -(-len(items) // batch_size)
    else:
        per_batch = max(1, batch_size // max(len(item.choices) for item in items))
        calls = -(-len(items) // per_batch)
    return Run(mode, f"batched (B={batch_size})", seconds, {}, {}, calls=calls, memory=mem).add_probe_rows(rows, items)


def warm_up(model: GroundedLM, items: list[MCQItem], modes: list[str], max_new_tokens: int) -> None:
    """A small batch per mode (and a single sequence), so lazy initialisation is not timed."""
    if "generate" in modes:
        model.generate([model.item_prompt(i, lettered_question(i)) for i in items[:2]], max_new_tokens)
        model.generate([model.item_prompt(items[0], lettered_question(items[0]))], max_new_tokens)
    if "loglik" in modes:
        model.loglikelihood(_requests(model, items[0]))
        model.loglikelihood(_requests(model, items[0])[:1])


# ---- report ----


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def train_table(spec: ModelSpec, device: torch.device, r: TrainResult) -> str:
    m = r.memory
    cuda = m.get("cuda_peak_allocated_mib")
    lines = ["| backbone | device | threads | batch | steps | s/step | samples/s | tokens/s | padding "
             "| prep s/step | RSS start / peak MiB | peak CUDA MiB | loss first / last |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    padding = 1 - r.tokens / r.padded_tokens if r.padded_tokens else 0.0
    lines.append(f"| {spec.name} | {device}{' bf16' if r.bf16 else ''} | {torch.get_num_threads()} | {r.batch_size} "
                 f"| {r.steps} | {r.seconds_per_step:.3f} | {r.samples_per_s:.2f} | {r.tokens / r.seconds:,.0f} "
                 f"| {padding:.0%} | {r.prep_seconds_per_step:.3f} | {_mib(m['rss_at_start_mib'])} / {_mib(m['peak_rss_mib'])} "
                 f"| {_mib(cuda)} "
                 f"| {r.losses[0]:.3f} / {r.losses[-1]:.3f} |")
    return "\n".join(lines)


def eval_table(runs: list[Run], reports: dict[tuple[str, str], dict]) -> str:
    loops = {r.mode: r for r in runs if r.method == "loop"}
    lines = ["| mode | method | items | calls | seconds | items/s | speed-up vs loop | same predictions as loop "
             "| accuracy | peak RSS MiB | peak CUDA MiB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        base = loops.get(r.mode)
        speedup = f"{r.items_per_s / base.items_per_s:.2f}x" if base else "-"
        report = reports.get((r.mode, r.method))
        same = f"{report['same_prediction']}/{report['items']}" if report else "-"
        lines.append(f"| {r.mode} | {r.method} | {r.items} | {r.calls} | {r.seconds:.2f} | {r.items_per_s:.2f} "
                     f"| {speedup} | {same} | {r.accuracy:.3f} | {_mib(r.memory.get('peak_rss_mib'))} "
                     f"| {_mib(r.memory.get('cuda_peak_allocated_mib'))} |")
    return "\n".join(lines)


# ---- main ----


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml",
                        help="workflow config: its `grounded` recipe and `models` entries")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help="a model name from the config, or a JSON model entry")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: tiny random Qwen3 backbone and a tiny connector (real Whisper encoder)")
    parser.add_argument("--checkpoint", help="a trained LALM directory (its recipe replaces the config's connector)")
    parser.add_argument("--packaged-root", default="resources/models")
    parser.add_argument("--train-file", default="resources/synthetic/train.json",
                        help="MMAU-format clips with metadata.summary (the responses)")
    parser.add_argument("--eval-file", default="resources/synthetic/test.json", help="MMAU/MMAR-format benchmark")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed optimizer steps before them")
    parser.add_argument("--batch-size", type=int, help="training samples per step (default: the config's)")
    parser.add_argument("--eval-items", type=int, default=32, help="test items for the evaluation (0: skip it)")
    parser.add_argument("--eval-batch-size", type=int,
                        help="sequences per forward pass when batched (default: the config's grounded.evaluate)")
    parser.add_argument("--mode", choices=("loglik", "generate", "both"), default="both")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--transcripts", choices=("recipe", "asr", "empty", "none"), default="recipe",
                        help="recipe: as grounded.use_transcript (or the checkpoint) says, Whisper's ASR "
                             "(untimed) when on; asr / empty / none: transcripts on with Whisper's ASR, "
                             "on with '' for each clip, or off")
    parser.add_argument("--skip-train", action="store_true", help="evaluation only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json-out", metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup_steps < 0:
        parser.error("--steps must be at least 1 and --warmup-steps at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = load_config_file(args.config)
    spec = backbone_spec(args, config)
    settings = grounded_settings(args, config)
    args.batch_size = args.batch_size or settings["train"]["batch_size"]
    args.eval_batch_size = args.eval_batch_size or settings["evaluate"]["batch_size"]
    modes = ["loglik", "generate"] if args.mode == "both" else [args.mode]

    # Data first (clips and transcripts), so no timer or memory phase sees it being made.
    began = time.perf_counter()
    index_batches, seeds, prompts = ([], [], []) if args.skip_train else training_batches(args, settings)
    items = eval_items(args) if args.eval_items > 0 else []
    used = sorted({i for b in index_batches for i in b})
    clips = load_clips([seeds[i].audio for i in used] + [item.audio for item in items])
    lalm = build_lalm(spec, settings, Path(args.packaged_root),
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None)
    if args.transcripts != "recipe" and lalm.config.use_transcript != settings["use_transcript"]:
        raise SystemExit(f"--transcripts {args.transcripts}: the checkpoint's recipe has use_transcript "
                         f"{lalm.config.use_transcript}, which a checkpoint fixes")
    settings["use_transcript"] = lalm.config.use_transcript
    transcripts = transcripts_for(args, settings, clips)
    device = lalm.device
    n_trainable = sum(p.numel() for n, p in lalm.named_parameters() if lalm.is_trainable(n))
    print(f"backbone {spec.name} on {device}, encoder {settings['encoder']['source']}, "
          f"{n_trainable / 1e6:.2f}M trainable parameters, {len(clips)} clips, transcripts: "
          f"{describe_transcripts(args, settings, transcripts)}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"setup {time.perf_counter() - began:.1f} s", file=sys.stderr)

    memory = PeakMemory(device)
    result: TrainResult | None = None
    if not args.skip_train:
        batches = [[LALMItem(audio=clips[seeds[i].audio], prompt=prompts[k % len(prompts)],
                             response=seeds[i].description, transcript=transcripts[seeds[i].audio])
                    for k, i in enumerate(b)] for b in index_batches]  # fmt: skip
        result = measure_training(lalm, batches, args.warmup_steps, settings, memory)

    runs, reports = [], {}
    if items:
        model = GroundedLM(spec, lalm, {item.id: Clip(clips[item.audio], transcripts[item.audio]) for item in items})
        warm_up(model, items, modes, args.max_new_tokens)
        for mode in modes:
            if mode == "generate":
                mode_runs = [loop_generate(model, items, args.max_new_tokens, memory)]
            else:
                mode_runs = [loop_loglik(model, items, per_item=False, memory=memory),
                             loop_loglik(model, items, per_item=True, memory=memory)]
            mode_runs.append(batched(model, items, mode, args.eval_batch_size, args.max_new_tokens, memory))
            for other in mode_runs[1:]:
                reports[(mode, other.method)] = agreement(mode_runs[0], other, items)
            runs += mode_runs

    if result is not None:
        print(f"## Training ({result.steps} timed steps after {args.warmup_steps} warm-up, "
              f"batch {result.batch_size}, peak RSS over the {result.memory['rss_scope']})\n")
        print(train_table(spec, device, result))
        print()
    if runs:
        print(f"## Evaluation ({len(items)} items, batched B={args.eval_batch_size} sequences per forward pass, "
              f"max new tokens {args.max_new_tokens})\n")
        print(eval_table(runs, reports))
        print()
        for report in reports.values():
            print(describe(report))
    if args.json_out:
        payload = {
            "backbone": spec.name, "spec": {"backend": spec.backend, "source": spec.source},
            "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "tiny": args.tiny, "checkpoint": args.checkpoint,
            "transcripts": describe_transcripts(args, settings, transcripts),
            "lalm_config": lalm.config.to_dict(), "trainable_parameters": n_trainable,
            "train": None if result is None else {
                "steps": result.steps, "warmup_steps": args.warmup_steps, "batch_size": result.batch_size,
                "seconds": result.seconds, "seconds_per_step": result.seconds_per_step,
                "samples_per_s": result.samples_per_s, "tokens_per_s": result.tokens / result.seconds,
                "tokens": result.tokens, "padded_tokens": result.padded_tokens,
                "prep_seconds_per_step": result.prep_seconds_per_step, "bf16": result.bf16,
                "losses": result.losses, "memory": result.memory},
            "eval": {"items": len(items), "batch_size": args.eval_batch_size, "max_new_tokens": args.max_new_tokens,
                     "runs": [{"mode": r.mode, "method": r.method, "items": r.items, "calls": r.calls,
                               "seconds": r.seconds, "items_per_s": r.items_per_s, "accuracy": r.accuracy,
                               "memory": r.memory} for r in runs],
                     "agreement": list(reports.values())},
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
