"""Malformed-input matrix (2/2): audio clips, configuration files, Snakemake profiles, model folders.

Each case hands a command a damaged input the way a user would and reads the verdict with
tests/verdicts.py: refused (exit != 0, one message naming the file and the item or field, no
output), warned (exit 0, a warning naming the clip), or accepted. Clips, configs and model folders
are made in tmp_path; everything runs in process except one `snakemake -n` for the config and one
for a profile (about 5 s each)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from verdicts import akb_verdict

from akb.audio import SAMPLE_RATE, load_audio
from akb.config import load_config_file, validate_config

ROOT = Path(__file__).resolve().parent.parent
TONE_HZ = 440.0
ITEM = "q-under-test"  # the benchmark item whose clip is spoiled; a second item keeps a sound clip


# ---------------------------------------------------------------- audio clips

def tone(rate: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def good_wav_bytes(tmp_path: Path) -> bytes:
    sf.write(tmp_path / "reference.wav", tone(48_000), 48_000)
    return (tmp_path / "reference.wav").read_bytes()


def nan_samples(path: Path) -> None:
    audio = tone(SAMPLE_RATE)
    audio[100:110] = np.nan
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")  # 16-bit PCM cannot hold a NaN


# name -> (file name, writer). Every writer makes the clip at `path`.
CLIPS = {
    "zero-length": ("clip.wav", lambda path: path.write_bytes(b"")),
    "truncated-header": ("clip.wav", lambda path: path.write_bytes(good_wav_bytes(path.parent)[:30])),
    "truncated-body": ("clip.wav", lambda path: path.write_bytes(good_wav_bytes(path.parent)[:1000])),
    "not-audio": ("clip.wav", lambda path: path.write_bytes(b"<html>404 Not Found</html>\n" * 20)),
    "nan-samples": ("clip.wav", nan_samples),
    "clipped": ("clip.wav", lambda path: sf.write(path, np.sign(tone(SAMPLE_RATE)), SAMPLE_RATE)),
    "silent": ("clip.wav", lambda path: sf.write(path, np.zeros(SAMPLE_RATE), SAMPLE_RATE)),
    "stereo": ("clip.wav", lambda path: sf.write(path, tone(SAMPLE_RATE, channels=2), SAMPLE_RATE)),
    "8kHz": ("clip.wav", lambda path: sf.write(path, tone(8_000), 8_000)),
    "48kHz": ("clip.wav", lambda path: sf.write(path, tone(48_000), 48_000)),
    # libsndfile >= 1.1 writes MP3 (the venv's soundfile wheel bundles 1.2).
    "mp3": ("clip.mp3", lambda path: sf.write(path, tone(SAMPLE_RATE), SAMPLE_RATE, format="MP3")),
    "flac": ("clip.flac", lambda path: sf.write(path, tone(44_100), 44_100)),
}


def benchmark_with(tmp_path: Path, case: str) -> tuple[Path, Path]:
    """An MMAU-format benchmark whose item ITEM has the spoiled clip; (benchmark file, clip)."""
    name, write = CLIPS[case]
    clip = tmp_path / "audio" / name
    clip.parent.mkdir()
    write(clip)
    sf.write(tmp_path / "audio" / "ok.wav", tone(SAMPLE_RATE), SAMPLE_RATE)
    record = {"question": "What is heard?", "choices": ["A tone", "A dog"], "answer": "A tone", "task": "sound"}
    records = [{"id": ITEM, "audio_id": f"audio/{name}", **record},
               {"id": "q-ok", "audio_id": "audio/ok.wav", **record}]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(records))
    return path, clip


def validate(tmp_path: Path, bench: Path, caplog, *check_audio: str):
    out = tmp_path / "validation.json"
    return akb_verdict(["validate-audio-benchmark", "--benchmark", bench, "--out", out, *check_audio], caplog), out


@pytest.mark.parametrize("case", ["zero-length", "truncated-header", "truncated-body", "not-audio"])
def test_unreadable_clips_are_refused_by_the_header_check(tmp_path, caplog, case):
    """The check every workflow run makes (rule validate_audio_benchmark) refuses the benchmark,
    naming the item and its clip, and writes no validation report."""
    bench, clip = benchmark_with(tmp_path, case)
    verdict, out = validate(tmp_path, bench, caplog)
    verdict.refused(ITEM, clip, outputs=(out,))
    assert "q-ok" not in verdict.messages  # only the bad item is blamed


def test_nan_samples_are_refused_by_decoding_and_when_captioning(tmp_path, caplog):
    """NaN samples sit behind a sound header: `--check-audio decode` finds them before any model
    runs, and a captioner that reaches the clip stops naming the clip and its item."""
    bench, clip = benchmark_with(tmp_path, "nan-samples")
    verdict, out = validate(tmp_path, bench, caplog, "--check-audio", "decode")
    verdict.refused(ITEM, clip, "NaN", outputs=(out,))
    captions = tmp_path / "captions.jsonl"
    captioner = json.dumps({"name": "dsp", "backend": "dsp"})
    verdict = akb_verdict(["caption", "--benchmark", bench, "--captioner", captioner, "--out", captions], caplog)
    verdict.refused(ITEM, clip, "NaN", outputs=(captions,))


@pytest.mark.parametrize("case, problem", [("clipped", "audio is clipped"), ("silent", "audio is silent")])
def test_clipped_and_silent_clips_are_warnings(tmp_path, caplog, case, problem):
    """A benchmark may hold distortion or silence on purpose: the decoding check warns, naming the
    item and the clip, and keeps the item."""
    bench, clip = benchmark_with(tmp_path, case)
    verdict, out = validate(tmp_path, bench, caplog, "--check-audio", "decode")
    verdict.warned(ITEM, clip, problem)
    report = json.loads(out.read_text())
    assert report["items"] == 2 and [p["severity"] for p in report["problems"]] == ["warning"]


@pytest.mark.parametrize("case", ["stereo", "8kHz", "48kHz", "mp3", "flac"])
def test_other_layouts_and_formats_are_read_as_16k_mono(tmp_path, caplog, case):
    """Accepted without a word, and heard as the models hear every clip: mono at 16 kHz, the
    same second of the same 440 Hz tone."""
    bench, clip = benchmark_with(tmp_path, case)
    verdict, out = validate(tmp_path, bench, caplog, "--check-audio", "decode")
    verdict.warned()
    assert verdict.messages == "" and json.loads(out.read_text())["problems"] == []
    audio = load_audio(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) <= SAMPLE_RATE * 0.01  # an MP3 frame of padding at most
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / audio.size - TONE_HZ) < 3


# ---------------------------------------------------------------- configuration files

MODEL = {"name": "m", "backend": "tiny", "source": "llama"}
BENCH = {"name": "b", "source": "bench.json"}


def config_with(**blocks) -> dict:
    return {"models": [MODEL], **blocks}


def api_model(name: str) -> dict:
    return {"name": name, "backend": "api", "source": "gpt-x", "api": {"base_url": "http://localhost:1/v1"}}


# (config file text or dict, what the message must name besides the file)
CONFIGS = {
    "empty-file": ("", "'models' is a required property"),
    "yaml-syntax-error": ("models:\n  - {name: m, backend: tiny\nprobe: {}\n", "line 3"),
    "not-a-mapping": ("- models\n- probe\n", "not a list"),
    "wrong-type": ({"models": "m"}, "config.models: 'm' is not of type 'array'"),
    "wrong-nested-type": (config_with(probe={"batch_size": "eight"}), "config.probe.batch_size"),
    "out-of-range": (config_with(probe={"batch_size": 0}), "config.probe.batch_size: 0 is less than the minimum"),
    "bad-enum": (config_with(probe={"mode": "vibes"}), "config.probe.mode"),
    "unknown-top-key": (config_with(modles=[]), "unknown key 'modles' (did you mean 'models'?)"),
    "unknown-nested-key": ({"models": [{**MODEL, "sorce": "x"}]},
                           "config.models[0]: unknown key 'sorce' (did you mean 'source'?)"),
    "missing-required": ({"models": [{"name": "m", "backend": "tiny"}]}, "config.models[0]: 'source' is a required"),
    "api-without-endpoint": ({"models": [{"name": "m", "backend": "api", "source": "x"}]}, "'api' is a required"),
    "captioner-without-source": (config_with(captioners=[{"name": "w", "backend": "whisper"}]),
                                 "config.captioners[0]: 'source' is a required"),
    "duplicate-model": ({"models": [MODEL, MODEL]}, "config.models: duplicate name(s) ['m']"),
    "duplicate-captioner": (config_with(captioners=[{"name": "c", "backend": "dsp"}] * 2),
                            "config.captioners: duplicate name(s) ['c']"),
    "duplicate-benchmark": (config_with(audio_benchmarks=[BENCH, BENCH]),
                            "config.audio_benchmarks: duplicate name(s) ['b']"),
    "probe-unknown-model": (config_with(probe={"models": ["ghost"]}),
                            "config.probe.models: unknown model(s) ['ghost']"),
    "cascade-unknown-model": (config_with(cascade={"models": ["ghost"]}), "config.cascade.models: unknown model(s)"),
    "pairing-unknown-model": (config_with(captioners=[{"name": "c", "backend": "dsp", "models": ["ghost"]}]),
                              "config.captioners[0].models (c): unknown model(s) ['ghost']"),
    "main-captioner-unknown": (config_with(captioners=[{"name": "c", "backend": "dsp"}],
                                           cascade={"main_captioner": "gemini"}),
                               "config.cascade.main_captioner: 'gemini' is not a captioner"),
    "backbone-unknown": (config_with(grounded={"backbones": ["ghost"]}), "config.grounded.backbones: unknown model(s)"),
    "backbone-is-api": ({"models": [api_model("g")], "grounded": {"backbones": ["g"]}},
                        "config.grounded.backbones: g is an API model"),
    "grounded-unknown-benchmark": (config_with(audio_benchmarks=[BENCH], grounded={"benchmarks": ["mmau"]}),
                                   "config.grounded.benchmarks: unknown benchmark(s) ['mmau']"),
    "diagnostics-unknown-benchmark": (config_with(audio_benchmarks=[BENCH], grounded={"backbones": ["m"]},
                                                  diagnostics={"models": ["m"], "benchmarks": ["mmau"]}),
                                      "config.diagnostics.benchmarks: unknown benchmark(s) ['mmau']"),
    "diagnostics-not-a-backbone": (config_with(diagnostics={"models": ["m"]}),
                                   "config.diagnostics.models: ['m'] are not grounded backbones"),
    "api-model-by-loglik": ({"models": [api_model("g")], "probe": {"mode": "loglik"}},
                            "config.models[0] (g): API models cannot give log-likelihoods"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_bad_configs_are_refused_naming_file_and_key(tmp_path, caplog, case):
    """`akb check-ready --config` (and `akb provenance`) validate as the Snakefile does, and stop
    at the first look with the file and the key or line."""
    content, named = CONFIGS[case]
    path = tmp_path / "study.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    out = tmp_path / "readiness.json"
    akb_verdict(["check-ready", "--config", path, "--out", out], caplog).refused(path, named, outputs=(out,))


def test_anchor_blocks_are_the_one_kind_of_extra_key(tmp_path):
    """`x-...` blocks hold YAML anchors (the paper config's shared resources) and are allowed."""
    path = tmp_path / "study.yaml"
    path.write_text("x-gpu: &gpu {gpu: 1}\nmodels:\n  - {name: m, backend: tiny, source: llama, resources: *gpu}\n")
    assert load_config_file(path)["models"][0]["resources"]["gpu"] == 1
    assert validate_config(config_with())["cascade"]["main_captioner"] is None


def snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake -n` from the checkout, working in tmp_path (no .snakemake/ in the repository)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-n", "-s", str(ROOT / "Snakefile"),
           "--directory", str(tmp_path / "run"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_snakemake_refuses_a_config_typo_before_any_job(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config_with(modles=[])))
    run = snakemake(tmp_path, "--configfile", str(path))
    assert run.returncode != 0
    assert "unknown key 'modles' (did you mean 'models'?)" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


# ---------------------------------------------------------------- Snakemake profiles

def test_a_malformed_profile_is_named_with_its_line(tmp_path):
    """Snakemake reads the profile before the workflow: a YAML error stops it naming the profile's
    file and line. (An unknown option stops it too, as "unrecognized arguments: --name", without
    naming the file.)"""
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "config.yaml").write_text("cores: all\nresources:\n  - gpu=1\n   - mem: [\n")
    run = snakemake(tmp_path, "--workflow-profile", str(profile))
    assert run.returncode != 0
    assert f"{profile / 'config.yaml'}\", line 4" in run.stderr


# ---------------------------------------------------------------- model folders

@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tiny_qwen3):
    """A tiny Qwen3 saved as hub checkpoints are: config.json, model.safetensors, tokenizer files."""
    folder = tmp_path_factory.mktemp("models") / "sound"
    tiny_qwen3.model.save_pretrained(folder)
    tiny_qwen3.tokenizer.save_pretrained(folder)
    return folder


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


# name -> (spoil the copied folder, the file the message names relative to it, what else it says)
MODEL_FOLDERS = {
    "missing-folder": (shutil.rmtree, "", "does not exist"),
    "no-config-json": (lambda f: (f / "config.json").unlink(), "config.json", "not a transformers model folder"),
    "config-not-json": (lambda f: (f / "config.json").write_text('{"model_type": "qwen3",'), "config.json",
                        "not valid JSON"),
    "config-a-list": (lambda f: (f / "config.json").write_text("[]"), "config.json", "not a JSON object"),
    "weights-truncated": (lambda f: cut(f / "model.safetensors", 5000), "model.safetensors", "truncated"),
    "weights-not-safetensors": (lambda f: (f / "model.safetensors").write_bytes(b"\0" * 64), "model.safetensors",
                                "damaged"),
    "no-weights": (lambda f: (f / "model.safetensors").unlink(), "", "no file named model.safetensors"),
    "unknown-model-type": (lambda f: edit_config(f, model_type="qwen9"), "config.json",
                           "model_type 'qwen9' is unknown"),
    "contradictory-config": (lambda f: edit_config(f, num_hidden_layers=3), "", "num_hidden_layers"),
    "no-tokenizer": (lambda f: [p.unlink() for p in f.glob("*") if p.name.startswith(("tokenizer", "special", "vocab",
                                                                                      "merges", "chat_template"))],
                     "", "holds no tokenizer"),
    "weights-of-another-shape": (lambda f: edit_config(f, intermediate_size=96), "", "do not fit its config.json"),
}


@pytest.mark.parametrize("case", list(MODEL_FOLDERS))
def test_damaged_model_folders_are_refused_in_one_line(tmp_path, caplog, model_folder, bank_file, case):
    """`akb probe` on a local `source:` folder (backend hf) stops before answering anything, with
    one line naming the folder or the file, never a traceback."""
    spoil, file, says = MODEL_FOLDERS[case]
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    spoil(folder)
    out = tmp_path / "probe.jsonl"
    entry = json.dumps({"name": "m", "backend": "hf", "source": str(folder)})
    verdict = akb_verdict(["probe", "--bank", bank_file, "--model", entry, "--out", out, "--max-new-tokens", "2"],
                          caplog)
    verdict.refused("model m", folder / file if file else folder, says, outputs=(out,))


def test_an_unknown_architectures_entry_is_not_an_error(tmp_path, caplog, model_folder, bank_file):
    """transformers builds the model from `model_type`; `architectures` is a label it does not read."""
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    edit_config(folder, architectures=["Qwen9ForCausalLM"])
    out = tmp_path / "probe.jsonl"
    entry = json.dumps({"name": "m", "backend": "hf", "source": str(folder)})
    verdict = akb_verdict(["probe", "--bank", bank_file, "--model", entry, "--out", out, "--max-new-tokens", "1"],
                          caplog)
    verdict.warned()
    assert out.exists()


# ---------------------------------------------------------------- audio LLM checkpoints

@pytest.fixture(scope="module")
def lalm_setup(tmp_path_factory, tiny_whisper_dir):
    """A trained-checkpoint folder (untrained weights, saved as training saves them), its backbone's
    entry and grounded settings, and a one-item benchmark to evaluate."""
    from akb.lalm.grounded import build_lalm
    from akb.models import ModelSpec

    root = tmp_path_factory.mktemp("lalm")
    entry = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}}
    settings = validate_config({"models": [entry], "grounded": {
        "encoder": {"source": str(tiny_whisper_dir), "window_seconds": 2}, "use_transcript": False,
        "connector": {"n_taps": 1, "qformer_layers": 1, "queries_per_tap": 2, "qformer_intermediate_size": 16},
    }})["grounded"]  # fmt: skip
    build_lalm(ModelSpec.from_config(entry), settings, root).save_trainable(root / "checkpoint")
    bench, _ = benchmark_with(root, "stereo")
    return root / "checkpoint", entry, settings, bench


LALM_CHECKPOINTS = {
    "missing-folder": (shutil.rmtree, "", "does not exist"),
    "config-not-json": (lambda f: (f / "lalm_config.json").write_text("{"), "lalm_config.json", "not valid JSON"),
    "weights-truncated": (lambda f: cut(f / "lalm.safetensors", 100), "lalm.safetensors", "truncated"),
}


@pytest.mark.parametrize("case", list(LALM_CHECKPOINTS))
def test_damaged_audio_llm_checkpoints_are_refused_in_one_line(tmp_path, caplog, lalm_setup, case):
    checkpoint, entry, settings, bench = lalm_setup
    spoil, file, says = LALM_CHECKPOINTS[case]
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder)
    spoil(folder)
    out = tmp_path / "eval.jsonl"
    verdict = akb_verdict(["evaluate", "--benchmark", bench, "--checkpoint", folder, "--model", json.dumps(entry),
                           "--grounded", json.dumps(settings), "--out", out], caplog)
    verdict.refused(folder / file if file else folder, says, outputs=(out,))


def test_evaluation_stops_at_a_clip_with_nan_samples(tmp_path, caplog, lalm_setup):
    """Not an item scored wrong in silence: the run stops naming the clip and its item."""
    checkpoint, entry, settings, _ = lalm_setup
    bench, clip = benchmark_with(tmp_path, "nan-samples")
    out = tmp_path / "eval.jsonl"
    verdict = akb_verdict(["evaluate", "--benchmark", bench, "--checkpoint", checkpoint, "--model", json.dumps(entry),
                           "--grounded", json.dumps(settings), "--out", out], caplog)
    verdict.refused(ITEM, clip, "NaN", outputs=(out,))
