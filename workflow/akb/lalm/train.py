"""Training an audio LLM on self-distillation data, resumably.

AdamW with linear warmup and cosine decay (DeSTA2.5's schedule), gradient accumulation and clipping,
bf16 autocast on GPUs. The sample order is fixed by the seed (one permutation per epoch, cut into
micro-batches), so optimizer step s always sees the same samples: a run resumed from the checkpoint of
step s continues exactly where the interrupted one was. Checkpoints hold the trainable weights, the
optimizer and scheduler states and the loss log; the final output holds only the trainable weights,
the recipe, the loss log and its plot.

Data parallel (torchrun, see akb.lalm.parallel): with W processes an optimizer step takes a global
batch of batch_size x grad_accum x W samples (`batch_size` and `grad_accum` are per process, as
DeSTA2.5's "12 per GPU on 8 GPUs"; the step count and schedule follow from the global batch). The
global batch of step s is the same slice of the fixed sample order as in one process, cut into
micro-batches of batch_size; rank r takes micro-batches r*grad_accum .. r*grad_accum+grad_accum-1
of it. DistributedDataParallel averages the gradients over the ranks after each rank's last
micro-batch, so a step equals one process's step with grad_accum x W micro-batches of the same
samples (to float rounding): the same global batch gives the same optimisation on any number of
GPUs. Every rank holds the same weights and optimizer state; rank 0 alone writes the state file
(with every rank's RNG state), the loss log and the checkpoint, and a restarted job with the same
number of processes continues from the saved step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from akb.audio import load_audio
from akb.io import as_stored, atomic_path, digest, read_jsonl, set_aside_if_stale
from akb.lalm.model import LALM, CheckpointError
from akb.lalm.parallel import Ranks
from akb.lalm.processor import LALMItem
from akb.models import PACKAGED_ROOT

log = logging.getLogger(__name__)
STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainSettings:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 5000
    epochs: int = 5
    max_steps: int | None = None  # stop earlier than `epochs` would (a budget for demos)
    batch_size: int = 12  # samples per micro-batch
    grad_accum: int = 1
    grad_clip: float = 1.0
    checkpoint_every: int = 500  # optimizer steps
    seed: int = 0

    @classmethod
    def from_config(cls, settings: dict) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.items() if k in known}
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


def sample_order(n_samples: int, epochs: int, seed: int) -> np.ndarray:
    """Sample indices in training order: a fresh permutation per epoch, fixed by the seed."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n_samples) for _ in range(epochs)])


def total_steps(n_samples: int, s: TrainSettings, world: int = 1) -> int:
    """Optimizer steps: the samples of every epoch in global batches of batch_size x grad_accum x
    `world` (processes), the last one possibly short."""
    steps = math.ceil(n_samples * s.epochs / (s.batch_size * s.grad_accum * world))
    return min(steps, s.max_steps) if s.max_steps else steps


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ClipCache:
    """Clips loaded once each (training revisits them every epoch; the demo's fit in memory)."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._clips: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        if path not in self._clips:
            self._clips[path] = load_audio(path, self.sample_rate)
        return self._clips[path]


def _save_state(path: Path, model: LALM, optimizer, scheduler, step: int, losses: list[dict],
                extra: dict | None = None) -> None:
    """The state a restart needs; `extra` adds keys or replaces them (data-parallel runs keep each
    rank's RNG states instead of all GPUs' from rank 0)."""
    state = {"step": step, "model": {k: v.cpu() for k, v in model.trainable_state_dict().items()},
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "losses": losses, "rng": torch.get_rng_state(), **(extra or {})}  # fmt: skip
    if "cuda_rng" not in state:
        state["cuda_rng"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_state(path: Path) -> dict:
    """A training state written by `_save_state`, read without running any code it may hold: only
    tensors and plain data are accepted (torch's weights_only), so a planted file cannot execute."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: refused: the training state holds more than tensors and plain data "
                              f"({reason}); delete {path.parent} to start over if you did not write it") from e


def _rank_rngs(ranks: Ranks, device: torch.device) -> list[dict]:
    """Every rank's RNG states (a collective: all ranks call it), so each one's dropout continues
    after a restart as it would have. Only the rank's own GPU: touching the others would open a
    CUDA context on each from every rank."""
    mine = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    states: list = [None] * ranks.world
    dist.all_gather_object(states, mine)
    return states


def _distributed(model: LALM):
    """The model behind DistributedDataParallel, which averages the trainable weights' gradients
    over the ranks (and starts every rank from rank 0's weights). The frozen encoder and backbone
    are left out: each rank loaded the same ones, and broadcasting them would move gigabytes."""
    from torch.nn.parallel import DistributedDataParallel

    frozen = [n for n, _ in model.named_parameters() if not model.is_trainable(n)]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        model, frozen + [n for n, _ in model.named_buffers()])
    return DistributedDataParallel(model, broadcast_buffers=False)


def plot_losses(losses: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    steps = [r["step"] for r in losses]
    ax.plot(steps, [r["loss"] for r in losses], lw=0.8, color="0.6", label="per step")
    if len(losses) >= 10:  # a moving average shows the trend through the noise of small batches
        k = max(5, len(losses) // 20)
        smooth = np.convolve([r["loss"] for r in losses], np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, lw=1.6, color="C0", label=f"mean of {k}")
    ax.set(xlabel="optimizer step", ylabel="loss (response tokens)", title=title)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def train(
    model: LALM,
    rows: list[dict],
    transcripts: dict[str, str] | None,
    settings: TrainSettings,
    out_dir: str | Path,
    state_dir: str | Path,
    info: dict | None = None,
    inputs: dict | None = None,
) -> dict:
    """Train `model`'s connector (and LoRA) on distillation rows ({clip_id, audio, prompt, response});
    resume from `state_dir` if it holds a checkpoint; write the final checkpoint to `out_dir`
    atomically. Returns the training summary also written to out_dir/train_info.json."""
    if not rows:
        raise ValueError("no training rows")
    ranks = Ranks.current()  # rank 0 of 1 unless started by torchrun (akb.lalm.parallel)
    out_dir, state_dir = Path(out_dir), Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    device = model.device
    torch.manual_seed(settings.seed + ranks.rank)  # rank 0 as one process; the others' dropout differs
    params = [p for n, p in model.named_parameters() if model.is_trainable(n)]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
    steps = total_steps(len(rows), settings, ranks.world)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, settings.warmup_steps, steps))
    start, losses = 0, []
    state_path = state_dir / STATE_FILE
    fingerprint = run_fingerprint(rows, transcripts, settings, inputs)
    try:
        state = read_state(state_path)
    except FileNotFoundError:  # none yet, or another run's that rank 0 has just set aside
        state = None
    # A state of another run (other rows, settings or model) is set aside, not continued: only rank 0
    # moves the file, every rank starts afresh alike.
    if state is not None and state.get("fingerprint") != fingerprint:
        if ranks.main:
            set_aside_if_stale(state_path, state.get("fingerprint"), fingerprint)
        state = None
    if state is not None:
        if state.get("world_size", 1) != ranks.world:  # its steps were cut for another global batch
            raise ValueError(f"{state_path}: saved by a run of {state.get('world_size', 1)} process(es), "
                             f"this one has {ranks.world}: run with as many, or delete {state_dir} to start over")
        model.load_trainable_state(state["model"], source=str(state_path))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], state["losses"]
        if ranks.world > 1:
            mine = state["rank_rng"][ranks.rank]
            torch.set_rng_state(mine["cpu"])
            if mine["cuda"] is not None and device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], device)
        else:
            torch.set_rng_state(state["rng"])  # dropout continues as it would have without the interruption
            if state["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resuming from step %d of %d (%s)", start, steps, state_path)

    rows = _fitting(model, rows, transcripts)
    order = sample_order(len(rows), settings.epochs, settings.seed)
    clips = ClipCache(model.processor.features.sampling_rate)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    per_step = settings.batch_size * settings.grad_accum * ranks.world  # the global batch
    wrapped = _distributed(model) if ranks.world > 1 else None
    model.train()
    began = time.monotonic()
    with tqdm(total=steps, initial=start, desc="train", unit="step", disable=not ranks.main) as bar:
        for step in range(start, steps):
            step_loss = 0.0
            for micro in range(settings.grad_accum):
                first = step * per_step + (ranks.rank * settings.grad_accum + micro) * settings.batch_size
                picked, weight = order[first : first + settings.batch_size], 1.0
                last = micro == settings.grad_accum - 1
                if len(picked) == 0:  # past the end of the data: only in the run's last, short step
                    if wrapped is None or not last:
                        continue
                    # Every rank joins the gradient averaging after its last micro-batch: this one
                    # with a stand-in sample weighted 0, which adds nothing.
                    picked, weight = order[step * per_step : step * per_step + 1], 0.0
                items = [LALMItem(audio=clips(rows[i]["audio"]), prompt=rows[i]["prompt"],
                                  response=rows[i]["response"],
                                  transcript=None if transcripts is None else transcripts[rows[i]["clip_id"]])
                         for i in picked]  # fmt: skip
                if wrapped is None:
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        loss = model.loss(items) / settings.grad_accum
                    loss.backward()
                else:  # gradients are averaged over the ranks in the backward of the last micro-batch
                    with nullcontext() if last else wrapped.no_sync():
                        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                            loss = wrapped(model.processor(items, train=True)).loss * weight / settings.grad_accum
                        loss.backward()
                step_loss += float(loss)
            if wrapped is not None:  # the step's loss over the whole global batch, as one process logs it
                total = torch.tensor(step_loss, dtype=torch.float64, device=device)
                dist.all_reduce(total)
                step_loss = float(total) / ranks.world
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, settings.grad_clip))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append({"step": step + 1, "loss": step_loss, "lr": scheduler.get_last_lr()[0],
                           "grad_norm": grad_norm})  # fmt: skip
            bar.set_postfix(loss=f"{step_loss:.3f}")
            bar.update(1)
            if (step + 1) % settings.checkpoint_every == 0 and step + 1 < steps:
                extra = None if ranks.world == 1 else {
                    "world_size": ranks.world, "rank_rng": _rank_rngs(ranks, device), "cuda_rng": None}
                if ranks.main:
                    _save_state(state_path, model, optimizer, scheduler, step + 1, losses,
                                {"fingerprint": fingerprint, **(extra or {})})
    seconds = time.monotonic() - began
    model.eval()

    summary = {
        **(info or {}),
        "samples": len(rows),
        "steps": steps,
        "resumed_from_step": start,
        "samples_per_second": round((steps - start) * per_step / seconds, 3) if seconds > 0 and steps > start else None,
        "final_loss": float(np.mean([r["loss"] for r in losses[-10:]])),
        "first_loss": losses[0]["loss"],
        "settings": {f.name: getattr(settings, f.name) for f in fields(settings)},
        "device": str(device),
        "bf16": use_bf16,
        **({"processes": ranks.world, "global_batch": per_step} if ranks.world > 1 else {}),
    }
    if ranks.main:
        _publish(model, losses, summary, out_dir)
        state_path.unlink(missing_ok=True)
    return summary


def run_fingerprint(rows: list[dict], transcripts: dict[str, str] | None, settings: TrainSettings,
                    inputs: dict | None) -> dict:
    """What the trained weights depend on, kept in the training state so that a restart continues
    only the same run: the rows, transcripts and settings (not how often checkpoints are written),
    and `inputs` (the backbone and the recipe, from the caller)."""
    kept = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "checkpoint_every"}
    return as_stored({"rows": digest(rows), "transcripts": digest(transcripts), "settings": kept, **(inputs or {})})


def _fitting(model: LALM, rows: list[dict], transcripts: dict[str, str] | None) -> list[dict]:
    """The rows whose prompt leaves room for a response within max_length (checked before the first
    step, so a long prompt cannot stop a run hours in); the others are reported and left out."""
    keep = []
    for row in rows:
        transcript = None if transcripts is None else transcripts[row["clip_id"]]
        probe = LALMItem(audio=np.zeros(1, np.float32), prompt=row["prompt"], transcript=transcript)
        room = model.config.max_length - len(model.processor.pieces(probe, train=False))
        if room > len(model.processor.end_of_turn_ids):
            keep.append(row)
    if len(keep) < len(rows):
        log.warning("%d of %d rows have prompts too long for max_length %d and are left out",
                    len(rows) - len(keep), len(rows), model.config.max_length)
    if not keep:
        raise ValueError(f"no row fits max_length {model.config.max_length}")
    return keep


def _publish(model: LALM, losses: list[dict], summary: dict, out_dir: Path) -> None:
    """Write the checkpoint into a sibling temporary directory and rename it into place, so a
    directory at `out_dir` is always complete."""
    import pandas as pd

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_trainable(staging)
        pd.DataFrame(losses).to_csv(staging / "loss.csv", index=False)
        plot_losses(losses, staging / "loss.png", f"{summary.get('backbone', '')} self-distillation")
        (staging / "train_info.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_rows(path: str | Path) -> list[dict]:
    """Distillation rows. An empty response stays: its target is the end-of-turn alone, which is
    what the backbone did (random demo backbones often stop at once)."""
    rows = read_jsonl(path)
    empty = sum(not r["response"] for r in rows)
    if empty:
        log.warning("%s: %d of %d responses are empty (the target is then the end-of-turn alone)",
                    path, empty, len(rows))
    return rows


def train_backbone(model_entry: dict, grounded: dict, distill_path: str | Path, out_dir: str | Path,
                   state_dir: str | Path, transcripts_path: str | Path | None = None,
                   packaged_root: str | Path = PACKAGED_ROOT, threads: int | None = None) -> None:
    """`akb train`: the audio LLM of one backbone (a `models` entry) built by the `grounded` recipe,
    trained on its distillation rows. Under torchrun one of several data-parallel processes, each
    with its own model copy on its own GPU (akb.lalm.parallel); otherwise the one process."""
    from akb.lalm.grounded import build_lalm
    from akb.lalm.parallel import data_parallel
    from akb.lalm.transcripts import transcripts_for
    from akb.models import ModelSpec
    from akb.job_env import set_threads

    with data_parallel() as ranks:
        if not ranks.main:  # rank 0 reports; the others only their warnings and errors
            logging.getLogger().setLevel(logging.WARNING)
        set_threads(ranks.threads(threads))
        spec = ModelSpec.from_config(ranks.model_entry(model_entry))
        rows = read_rows(distill_path)
        transcripts = transcripts_for(transcripts_path, grounded["use_transcript"],
                                      dict.fromkeys(r["clip_id"] for r in rows))
        model = build_lalm(spec, grounded, Path(packaged_root))
        info = {"backbone": spec.name, "encoder": grounded["encoder"]["source"], "distill": str(distill_path)}
        inputs = {"model": spec.fingerprint(), "recipe": digest({k: v for k, v in grounded.items() if k != "train"})}
        train(model, rows, transcripts, TrainSettings.from_config(grounded["train"]), out_dir, state_dir, info, inputs)
