"""Kill matrix: every long job, killed with SIGKILL at seeded random points and run again, ends with
exactly the output of an uninterrupted run (no item lost, none twice, the same rows byte for byte;
for training the same weights); a full disk gives one clear line and nothing that looks complete.

Each job is an `akb` command in its own process, forked from a process that has already imported
akb and torch (ZYGOTE below): the same `akb.cli.main` the `akb` script runs, killed for real, without
paying the torch import once per kill. Kill points are drawn from a seeded random generator, so a
failure reproduces. The uninterrupted reference runs and the last resume of each chain run in this
process. AKB_TEST_SLOW_BATCH_S (akb.io, a test hook) makes each appended batch pause a little, so a
kill lands mid-run even on a busy machine."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from akb.cli import main as akb
from akb.data.synthetic import generate_split
from conftest import make_items
from test_api_backend import KEY_ENV, SECRET, running_server

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SEED = 17
TINY = json.dumps({"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}})
KILLS: dict[str, list[str]] = {}  # stage -> where each kill landed, reported at the end of the module

ZYGOTE = r"""
import json, os, resource, signal, sys, traceback
# What the `akb` runs below import (and the tiny models' shared tokenizer): paid once here.
import akb.cascade.caption, akb.captioners.dsp, akb.captioners.whisper, akb.cli, akb.data.audio_bench, akb.data.bank
import akb.lalm.distill, akb.lalm.grounded, akb.lalm.train, akb.lalm.transcripts, akb.models.api, akb.models.tiny
import akb.probe.run, akb.probe.shards, torch, transformers
from transformers import Qwen3ForCausalLM, WhisperForConditionalGeneration, WhisperProcessor
akb.models.tiny._base_tokenizer()

for line in sys.stdin:
    msg = json.loads(line)
    if "wait" in msg:
        _, status = os.waitpid(msg["wait"], 0)
        print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                          "rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            fd = os.open(msg["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            if msg.get("fsize"):  # a full disk: writes past fsize bytes fail with EFBIG
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (msg["fsize"], msg["fsize"]))
            rc = akb.cli.main(msg["argv"])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc or 0)
    print(json.dumps({"pid": pid}), flush=True)
"""


class Zygote:
    """Forks `akb` runs on request; reaps them and says how each ended."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, argv: list[str], log: Path, fsize: int | None = None) -> int:
        return self._ask({"argv": argv, "log": str(log), "fsize": fsize})["pid"]

    def wait(self, pid: int) -> dict:
        return self._ask({"wait": pid})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote():
    env = os.environ | {"AKB_TEST_SLOW_BATCH_S": "0.02", KEY_ENV: SECRET, "HF_HUB_OFFLINE": "1",
                        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    z = Zygote(env)
    yield z
    z.close()
    print("\nkills per stage:", json.dumps(KILLS), f"({sum(map(len, KILLS.values()))} in all)")


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_when(zygote: Zygote, argv: list[str], log: Path, ready, final: Path, rng: random.Random) -> None:
    """Start the run, wait until `ready()`, wait a random moment more, SIGKILL it; fail if it ended first."""
    pid = zygote.start(argv, log)
    deadline = time.monotonic() + 120
    while not ready():
        assert not final.exists(), f"the run ended before its kill point ({log})"
        assert time.monotonic() < deadline, f"no kill point reached in 120 s ({log}):\n{log.read_text()[-2000:]}"
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.03))
    os.kill(pid, signal.SIGKILL)
    ended = zygote.wait(pid)
    assert ended["signal"] == signal.SIGKILL, f"the run ended before its kill ({ended}):\n{log.read_text()[-2000:]}"
    assert not final.exists()  # nothing that looks complete


def kill_chain(zygote, stage: str, argv: list[str], out: Path, kills: int, rng: random.Random, max_rows: int = 2):
    """Kill the run `kills` times in a row, each time once `1..max_rows` more rows are in its partial
    file (a resumed run first reloads the rows before); then run it to the end in this process."""
    partial = out.with_name(out.name + ".partial")
    for k in range(kills):
        target = lines(partial) + rng.randint(1, max_rows)
        kill_when(zygote, argv, out.parent / f"{out.name}.kill{k}.log", lambda: lines(partial) >= target, out, rng)
        KILLS.setdefault(stage, []).append(f"row {target}")
    assert akb(argv) == 0


def assert_same_rows(got: Path, want: Path):
    ids = [json.loads(line)["id"] for line in got.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == lines(want)  # none lost, none twice
    assert got.read_text() == want.read_text()


# ---- inputs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory, one_torch_thread):
    return tmp_path_factory.mktemp("kills")


@pytest.fixture(scope="module")
def bank(work):
    path = work / "bank.jsonl"
    path.write_text("".join(json.dumps(it.to_bank_record()) + "\n" for it in make_items(40)))
    return path


@pytest.fixture(scope="module")
def suite(work):
    return {split: generate_split(work / "suite", 0, split, n, speech_engine="formant")
            for split, n in (("test", 12), ("train", 8))}


def grounded(whisper_dir) -> str:
    return json.dumps({
        "encoder": {"source": str(whisper_dir), "window_seconds": 5},
        "connector": {"n_taps": 2, "qformer_layers": 1, "queries_per_tap": 4, "qformer_intermediate_size": 64},
        "use_transcript": False,
        "lora": None,
        "train": {"lr": 1e-3, "warmup_steps": 2, "epochs": 2, "batch_size": 2, "grad_accum": 1,
                  "checkpoint_every": 1, "max_length": 400, "seed": 0},
    })  # fmt: skip


def probe_args(bank, out, mode="generate"):
    return ["probe", "--bank", str(bank), "--model", TINY, "--mode", mode, "--batch-size", "1" if mode == "generate"
            else "4", "--max-new-tokens", "4", "--threads", "1", "--out", str(out)]


@pytest.fixture(scope="module")
def probe_reference(work, bank):
    refs = {}
    for mode in ("generate", "loglik"):
        refs[mode] = work / f"probe-ref-{mode}.jsonl"
        assert akb(probe_args(bank, refs[mode], mode)) == 0
    return refs


def distill_args(suite, out):
    return ["distill", "--seeds", str(suite["train"]), "--prompts", json.dumps(["Describe the audio.", "What is it?"]),
            "--model", TINY, "--batch-size", "1", "--max-new-tokens", "6", "--threads", "1", "--out", str(out)]


@pytest.fixture(scope="module")
def distilled(work, suite):
    out = work / "distill-ref.jsonl"
    assert akb(distill_args(suite, out)) == 0
    return out


def train_args(distilled, whisper_dir, out, state):
    return ["train", "--distill", str(distilled), "--model", TINY, "--grounded", grounded(whisper_dir),
            "--threads", "1", "--state-dir", str(state), "--out", str(out)]


@pytest.fixture(scope="module")
def trained(work, distilled, tiny_whisper_dir):
    out = work / "train-ref"
    assert akb(train_args(distilled, tiny_whisper_dir, out, work / "train-ref-state")) == 0
    return out


def evaluate_args(suite, checkpoint, whisper_dir, out, condition="full"):
    return ["evaluate", "--benchmark", str(suite["test"]), "--checkpoint", str(checkpoint), "--model", TINY,
            "--grounded", grounded(whisper_dir), "--condition", condition, "--batch-size", "1",
            "--max-new-tokens", "4", "--threads", "1", "--out", str(out)]


# ---- the matrix ---------------------------------------------------------------------------------------


def test_probe_killed_three_times_resumes_to_the_uninterrupted_rows(zygote, work, bank, probe_reference):
    rng = random.Random(SEED)
    out = work / "probe.jsonl"
    kill_chain(zygote, "probing", probe_args(bank, out), out, 3, rng)
    assert_same_rows(out, probe_reference["generate"])


def test_a_killed_generate_probe_rerun_in_loglik_mode_keeps_none_of_its_rows(zygote, work, bank, probe_reference):
    """The user's bug: a generate run stopped after its first batch, rerun in loglik mode, ended with
    rows of both modes in one file. The partial file of the other mode is set aside instead."""
    rng = random.Random(SEED + 1)
    out = work / "probe-modes.jsonl"
    partial = out.with_name(out.name + ".partial")
    kill_when(zygote, probe_args(bank, out), work / "modes.log", lambda: lines(partial) >= 1, out, rng)
    KILLS.setdefault("probing", []).append("row 1, rerun in the other mode")
    assert akb(probe_args(bank, out, "loglik")) == 0
    assert_same_rows(out, probe_reference["loglik"])
    stale = [json.loads(line) for line in partial.with_name(partial.name + ".stale").read_text().splitlines()
             if line.endswith("}")]  # fmt: skip
    assert stale and {r["mode"] for r in stale} == {"generate"}


def killed_run_matches_reference(zygote, work, stage, argv, stem, kills, rng):
    """`argv` run whole to `{stem}-ref.jsonl`, then killed `kills` times on its way to `{stem}.jsonl`
    and resumed: both files must hold the same rows."""
    reference = work / f"{stem}-ref.jsonl"
    assert akb([*argv, "--out", str(reference)]) == 0
    out = work / f"{stem}.jsonl"
    kill_chain(zygote, stage, [*argv, "--out", str(out)], out, kills, rng)
    assert_same_rows(out, reference)


def test_captioning_killed_twice_resumes(zygote, work, suite):
    rng = random.Random(SEED + 2)
    argv = ["caption", "--benchmark", str(suite["test"]), "--captioner", json.dumps({"name": "dsp", "backend": "dsp"}),
            "--batch-size", "1"]
    killed_run_matches_reference(zygote, work, "captioning", argv, "captions", 2, rng)


def test_cascade_killed_twice_resumes(zygote, work, suite):
    rng = random.Random(SEED + 3)
    items = json.loads(suite["test"].read_text())
    captions = work / "hand-captions.jsonl"
    captions.write_text("".join(json.dumps({"id": r["id"], "captioner": "hand", "caption": f"a sound, number {i}"})
                                + "\n" for i, r in enumerate(items)))  # fmt: skip
    argv = ["cascade", "--benchmark", str(suite["test"]), "--captions", str(captions), "--model", TINY,
            "--batch-size", "1", "--max-new-tokens", "4", "--threads", "1"]
    killed_run_matches_reference(zygote, work, "cascade", argv, "cascade", 2, rng)


def test_distillation_killed_three_times_resumes(zygote, work, suite, distilled):
    rng = random.Random(SEED + 4)
    out = work / "distill.jsonl"
    kill_chain(zygote, "distillation", distill_args(suite, out), out, 3, rng)
    assert_same_rows(out, distilled)


def test_training_killed_three_times_ends_with_the_uninterrupted_weights(zygote, work, distilled, trained,
                                                                        tiny_whisper_dir):
    rng = random.Random(SEED + 5)
    out, state_dir = work / "train", work / "train-state"
    state = state_dir / "train_state.pt"
    argv = train_args(distilled, tiny_whisper_dir, out, state_dir)
    for k in range(3):
        # Kill once the run has written a checkpoint of its own (a later step than the one it resumed).
        before = state.stat().st_mtime_ns if state.exists() else None
        kill_when(zygote, argv, work / f"train.kill{k}.log",
                  lambda: state.exists() and state.stat().st_mtime_ns != before, out, rng)
        KILLS.setdefault("training", []).append(f"step {torch.load(state, weights_only=True)['step']}")
    assert akb(argv) == 0
    info = json.loads((out / "train_info.json").read_text())
    assert info["resumed_from_step"] > 0
    want, got = load_file(trained / "lalm.safetensors"), load_file(out / "lalm.safetensors")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert (out / "loss.csv").read_text() == (trained / "loss.csv").read_text()
    assert not state.exists()


def test_evaluation_killed_twice_resumes(zygote, work, suite, trained, tiny_whisper_dir):
    rng = random.Random(SEED + 6)
    reference = work / "evaluate-ref.jsonl"
    assert akb(evaluate_args(suite, trained, tiny_whisper_dir, reference)) == 0
    out = work / "evaluate.jsonl"
    kill_chain(zygote, "evaluation", evaluate_args(suite, trained, tiny_whisper_dir, out), out, 2, rng)
    assert_same_rows(out, reference)


def test_diagnostic_conditions_killed_resume(zygote, work, suite, trained, tiny_whisper_dir):
    """A diagnostic condition's evaluation (silence) and its Whisper transcripts (a fragment)."""
    rng = random.Random(SEED + 7)
    reference = work / "silence-ref.jsonl"
    assert akb(evaluate_args(suite, trained, tiny_whisper_dir, reference, "silence")) == 0
    out = work / "silence.jsonl"
    kill_chain(zygote, "diagnostics", evaluate_args(suite, trained, tiny_whisper_dir, out, "silence"), out, 1, rng)
    assert_same_rows(out, reference)

    argv = ["transcribe", "--benchmark", str(suite["test"]), "--condition", "fragment-2-1", "--whisper",
            str(tiny_whisper_dir), "--batch-size", "1", "--threads", "1"]
    killed_run_matches_reference(zygote, work, "diagnostics", argv, "transcripts", 1, rng)


def test_api_probe_killed_twice_resumes_resending_only_what_was_in_flight(zygote, work, bank):
    rng = random.Random(SEED + 8)
    with pytest.MonkeyPatch.context() as monkeypatch, running_server(monkeypatch) as server:
        server.delay = 0.02

        def args(out, cache):
            api = {"base_url": server.url, "key_env": KEY_ENV, "cache_dir": str(cache), "backoff_base_s": 0.001,
                   "timeout_s": 5, "max_retries": 3, "max_concurrency": 1}
            model = json.dumps({"name": "fake", "backend": "api", "source": "fake-model-1", "api": api})
            return ["probe", "--bank", str(bank), "--model", model, "--mode", "generate", "--batch-size", "1",
                    "--out", str(out)]

        reference = work / "api-ref.jsonl"
        assert akb(args(reference, work / "api-ref-cache")) == 0
        sent = len(server.requests)
        out = work / "api.jsonl"
        kill_chain(zygote, "API backend", args(out, work / "api-cache"), out, 2, rng)
        assert_same_rows(out, reference)
        # Every answer was cached as it came: a rerun resends at most the one request in flight at each kill.
        assert lines(bank) <= len(server.requests) - sent <= lines(bank) + 2


# ---- a full disk ----------------------------------------------------------------------------------------


def test_a_full_disk_gives_one_clear_line_and_a_rerun_completes(zygote, work, bank, probe_reference):
    out = work / "full-disk.jsonl"
    partial = out.with_name(out.name + ".partial")
    log = work / "full-disk.log"
    pid = zygote.start(probe_args(bank, out), log, fsize=12_000)
    ended = zygote.wait(pid)
    text = log.read_text()
    assert ended["rc"] == 1, text
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"{partial}: cannot write: File too large" in errors[0], text
    assert "Traceback" not in text and not out.exists() and not list(work.glob(".full-disk.jsonl*.tmp"))
    assert 0 < lines(partial) < lines(bank)
    assert akb(probe_args(bank, out)) == 0  # with room again: resumes from the whole rows
    assert_same_rows(out, probe_reference["generate"])
