"""Data-parallel training (DDP over gloo on CPU, two processes): the same global batch gives the
same losses and weights as one process, and an interrupted two-process run resumes exactly."""

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from akb.data.synthetic import generate_split
from akb.lalm.distill import read_seeds
from akb.lalm.grounded import build_lalm
from akb.lalm.train import STATE_FILE, TrainSettings, read_state, run_fingerprint, train
from akb.models import ModelSpec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}}
# 9 rows x 2 epochs = 18 samples in global batches of 8: steps of 8, 8 and 2 samples. In the last
# one rank 0 has one micro-batch and rank 1 none (it joins the gradient averaging with nothing).
ROWS, EPOCHS = 9, 2


def grounded(whisper_dir, dropout=0.0, **train):
    return {
        "encoder": {"source": str(whisper_dir), "window_seconds": 2},
        "connector": {"n_taps": 2, "qformer_layers": 1, "queries_per_tap": 4, "qformer_intermediate_size": 64,
                      "qformer_dropout": dropout},
        "use_transcript": False,
        "lora": None,
        "train": {"lr": 3e-3, "warmup_steps": 1, "epochs": EPOCHS, "batch_size": 2, "grad_accum": 2,
                  "checkpoint_every": 2, "max_length": 200, "seed": 0, **train},
    }  # fmt: skip


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Distillation rows with responses of different lengths (so micro-batches are padded)."""
    suite = generate_split(tmp_path_factory.mktemp("suite"), 0, "train", ROWS, speech_engine="formant")
    return [{"id": f"{s.clip_id}#0", "clip_id": s.clip_id, "audio": s.audio,
             "prompt": ["Describe the audio.", "What do you hear?"][k % 2],
             "response": s.description[: 20 + 9 * k]} for k, s in enumerate(read_seeds(suite))]  # fmt: skip


def run(settings, rows, out, fail_at=None):
    """One training run as every process does it: the same seed before building the model, so the
    connector starts from the same weights in any process."""
    torch.manual_seed(0)
    model = build_lalm(ModelSpec.from_config(MODEL), settings, Path("resources/models"))
    if fail_at is not None:  # an interruption: the fail_at-th forward pass of this process raises
        calls, forward = {"n": 0}, model.forward

        def failing(batch):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise InterruptedError("killed")
            return forward(batch)

        model.forward = failing
    return train(model, rows, None, TrainSettings.from_config(settings["train"]), out, Path(f"{out}-state"))


def worker(rank, world, port, jobs):
    """A torchrun-like process: joins the gloo group, then runs `jobs` (settings, rows, out, fail_at)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        for settings, rows, out, fail_at in jobs:
            try:
                run(settings, rows, out, fail_at)
            except InterruptedError:  # both ranks stop at the same forward pass, before any collective
                pass
    finally:
        dist.destroy_process_group()


def spawn(jobs, world=2):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(world, port, jobs), nprocs=world, join=True)


def weights(out):
    return load_file(Path(out) / "lalm.safetensors")


def losses(out):
    import pandas as pd

    return pd.read_csv(Path(out) / "loss.csv")


def test_two_processes_match_one_and_resume_exactly(tmp_path, tiny_whisper_dir, rows):
    torch.set_num_threads(1)
    # One process: micro-batches of 2, four per step (global batch 8).
    one = grounded(tiny_whisper_dir, grad_accum=4)
    summary = run(one, rows, tmp_path / "one")
    assert summary["steps"] == 3
    # Two processes, each two micro-batches of 2 per step: the same global batch. Then, with dropout,
    # a run throughout and one interrupted in step 3 (after the step-2 checkpoint).
    two, dropout = grounded(tiny_whisper_dir), grounded(tiny_whisper_dir, dropout=0.1)
    spawn([(two, rows, tmp_path / "two", None), (dropout, rows, tmp_path / "dropout", None),
           (dropout, rows, tmp_path / "cut", 5)])  # fmt: skip

    # The same optimisation: losses, learning rates and final trainable weights, to float rounding.
    want, got = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(got) == 3 and list(got["step"]) == [1, 2, 3]
    for column in ("loss", "lr", "grad_norm"):
        assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-5, abs=1e-7), column
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    assert max(float((a[k] - weights(tmp_path / "dropout")[k]).abs().max()) for k in a) > 1e-4  # dropout counts
    info = json.loads((tmp_path / "two" / "train_info.json").read_text())
    assert info["processes"] == 2 and info["global_batch"] == 8 and info["steps"] == 3
    assert not list(tmp_path.glob("two-state/*"))  # the state is gone once the checkpoint is published

    # The interrupted run left rank 0's state at step 2 and no checkpoint; two new processes resume
    # it to exactly the uninterrupted run (each rank's dropout continues from its saved RNG state).
    assert not (tmp_path / "cut").exists()
    state = read_state(tmp_path / "cut-state" / STATE_FILE)  # as the resuming run reads it: no unpickling
    assert state["step"] == 2 and state["world_size"] == 2 and len(state["rank_rng"]) == 2
    spawn([(dropout, rows, tmp_path / "cut", None)])
    assert json.loads((tmp_path / "cut" / "train_info.json").read_text())["resumed_from_step"] == 2
    want, got = weights(tmp_path / "dropout"), weights(tmp_path / "cut")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert losses(tmp_path / "cut").equals(losses(tmp_path / "dropout"))


def test_a_state_saved_by_another_number_of_processes_is_refused(tmp_path, tiny_whisper_dir, rows):
    out = tmp_path / "ck"
    (tmp_path / "ck-state").mkdir()
    settings = grounded(tiny_whisper_dir)
    same_run = run_fingerprint(rows, None, TrainSettings.from_config(settings["train"]), None)
    torch.save({"step": 2, "world_size": 2, "fingerprint": same_run}, tmp_path / "ck-state" / STATE_FILE)
    with pytest.raises(ValueError, match=r"saved by a run of 2 process\(es\), this one has 1"):
        run(settings, rows, out)
    assert not out.exists()


def test_torchrun_launches_akb_train_on_two_processes(tmp_path, tiny_whisper_dir, rows):
    """The command the workflow runs for a multi-GPU training job, here on CPU (gloo)."""
    distill = tmp_path / "distill.jsonl"
    distill.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "akb",
           "train", "--distill", str(distill), "--model", json.dumps({**MODEL, "resources": {"gpu": 2}}),
           "--grounded", json.dumps(grounded(tiny_whisper_dir, epochs=1)), "--threads", "2",
           "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "ck")]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "ck" / "train_info.json").read_text())
    assert info["processes"] == 2 and info["global_batch"] == 8 and info["steps"] == 2 and info["device"] == "cpu"
    assert len(losses(tmp_path / "ck")) == 2 and not list((tmp_path / "state").iterdir())
    assert result.stderr.count("data-parallel training: 2 processes, 2 per node (gloo)") == 1  # rank 0 alone
