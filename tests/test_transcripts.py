"""Shared Whisper transcripts: `akb transcribe` (resumable), and `akb train` / `akb evaluate` reading them."""

import json

import pytest

from akb.audio import load_audio
from akb.captioners.whisper import WhisperCaptioner
from akb.cli import main
from akb.data.audio_bench import load_audio_benchmark
from akb.data.synthetic import generate_split
from akb.diagnostics.conditions import condition_audio
from akb.io import read_jsonl, write_jsonl
from akb.lalm.distill import read_seeds
from akb.lalm.grounded import Clip, GroundedLM, build_lalm, transcribe
from akb.lalm.processor import LALMItem
from akb.lalm.transcripts import read_transcripts
from akb.models import ModelSpec
from akb.probe.run import probe

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]

MODEL = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}}
# Half of a clip shorter than 1.125 s is under this many samples: those clips (about half of the
# suite's) cannot be cut into 2.
MIN_SAMPLES = 9000


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    return {split: generate_split(out, 1, split, 10, speech_engine="formant") for split in ("train", "test")}


def grounded(whisper_dir):
    return {
        "encoder": {"source": str(whisper_dir), "window_seconds": 5},
        "connector": {"n_taps": 2, "qformer_layers": 1, "queries_per_tap": 4, "qformer_intermediate_size": 64},
        "use_transcript": True,
        "lora": None,
        "train": {"lr": 1e-3, "warmup_steps": 1, "epochs": 1, "max_steps": 1, "batch_size": 4, "max_length": 400,
                  "checkpoint_every": 10, "seed": 0},
    }  # fmt: skip


def conditioned(items, condition):
    """(id -> audio, id -> error) under a condition, as `akb evaluate` cuts the clips."""
    audios, errors = {}, {}
    for item in items:
        try:
            audios[item.id] = condition_audio(load_audio(item.audio), condition, min_samples=MIN_SAMPLES)
        except ValueError as e:
            errors[item.id] = str(e)
    return audios, errors


def transcribe_cli(whisper_dir, out, *source, batch_size=3):
    return main(["transcribe", *source, "--whisper", str(whisper_dir), "--batch-size", str(batch_size),
                 "--threads", "1", "--out", str(out)])  # fmt: skip


def test_training_transcripts_resume_and_match_the_in_process_path(suite, tiny_whisper_dir, tmp_path, monkeypatch):
    seeds = read_seeds(suite["train"])
    whole = tmp_path / "whole.jsonl"
    assert transcribe_cli(tiny_whisper_dir, whole, "--seeds", str(suite["train"])) == 0
    rows = read_jsonl(whole)
    assert [r["id"] for r in rows] == [s.clip_id for s in seeds]  # one row per clip, in seed order
    # The same transcripts as transcribing every clip in one go, in order, as `akb train` used to.
    old = transcribe(str(tiny_whisper_dir), [load_audio(s.audio) for s in seeds])
    assert [r["transcript"] for r in rows] == old and any(old)

    # Killed during its third batch: the batches before are kept, the file is not published.
    real, calls = WhisperCaptioner.transcribe, {"n": 0}

    def dying(self, audios):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, audios)

    out = tmp_path / "train.jsonl"
    monkeypatch.setattr(WhisperCaptioner, "transcribe", dying)
    with pytest.raises(KeyboardInterrupt):
        transcribe_cli(tiny_whisper_dir, out, "--seeds", str(suite["train"]))
    assert not out.exists() and len(read_jsonl(out.with_name("train.jsonl.partial"))) == 6
    with out.with_name("train.jsonl.partial").open("a") as f:
        f.write('{"id": "torn')  # as a kill in the middle of a write leaves it
    calls["n"] = 10  # no more interruptions: count the batches the resumed run transcribes
    assert transcribe_cli(tiny_whisper_dir, out, "--seeds", str(suite["train"])) == 0
    assert calls["n"] == 10 + 2  # the 4 clips not done, in 2 batches
    assert out.read_text() == whole.read_text() and not out.with_name("train.jsonl.partial").exists()


def test_benchmark_transcripts_under_a_condition_record_clips_too_short_to_cut(suite, tiny_whisper_dir, tmp_path):
    out = tmp_path / "fragment-2-1.jsonl"
    args = ["--benchmark", str(suite["test"]), "--condition", "fragment-2-1",
            "--min-fragment-samples", str(MIN_SAMPLES)]
    assert transcribe_cli(tiny_whisper_dir, out, *args, batch_size=4) == 0
    items, _ = load_audio_benchmark(suite["test"])
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert list(rows) == [it.id for it in items]
    audios, errors = conditioned(items, "fragment-2-1")
    assert errors and audios  # the suite has clips on both sides of 1.125 s
    assert {i: r["error"] for i, r in rows.items() if r["transcript"] is None} == errors
    old = transcribe(str(tiny_whisper_dir), list(audios.values()))
    assert [rows[i]["transcript"] for i in audios] == old
    assert read_transcripts(out, audios) == dict(zip(audios, old))
    with pytest.raises(ValueError, match=rf"fragment-2-1.jsonl: no transcript for clip '{next(iter(errors))}'"):
        read_transcripts(out, [next(iter(errors))])
    assert transcribe_cli(tiny_whisper_dir, tmp_path / "none.jsonl", "--benchmark", str(suite["test"]),
                          "--condition", "none") == 2  # nothing to transcribe  # fmt: skip


def test_train_and_evaluate_read_the_shared_transcripts(suite, tiny_whisper_dir, tmp_path, monkeypatch, caplog):
    from akb.lalm.model import LALM

    settings = grounded(tiny_whisper_dir)
    seeds = read_seeds(suite["train"])
    train_transcripts = tmp_path / "train-transcripts.jsonl"
    write_jsonl(train_transcripts, [{"id": s.clip_id, "transcript": f"words of {s.clip_id}"} for s in seeds])
    distill = tmp_path / "distill.jsonl"
    write_jsonl(distill, [{"id": f"{s.clip_id}#0", "clip_id": s.clip_id, "audio": s.audio,
                           "prompt": f"Describe clip {s.clip_id}.", "response": "A sound."}
                          for s in seeds])  # fmt: skip
    seen: list[LALMItem] = []
    real_loss = LALM.loss
    monkeypatch.setattr(LALM, "loss", lambda self, items: seen.extend(items) or real_loss(self, items))
    common = ["--model", json.dumps(MODEL), "--grounded", json.dumps(settings), "--threads", "1"]
    checkpoint = tmp_path / "checkpoint"
    train = ["train", "--distill", str(distill), *common, "--state-dir", str(tmp_path / "state"),
             "--out", str(checkpoint)]
    assert main(train) == 2  # use_transcript is on: training needs the transcripts
    assert main([*train, "--transcripts", str(train_transcripts)]) == 0
    assert len(seen) == 4  # one step of 4 samples, each with its own clip's transcript
    assert all(it.transcript == "words of " + it.prompt.removeprefix("Describe clip ").removesuffix(".") for it in seen)

    # Evaluation reads the condition's transcripts and answers exactly as transcribing in process did.
    condition = "fragment-2-1"
    transcripts = tmp_path / f"{condition}.jsonl"
    assert transcribe_cli(tiny_whisper_dir, transcripts, "--benchmark", str(suite["test"]), "--condition", condition,
                          "--min-fragment-samples", str(MIN_SAMPLES)) == 0  # fmt: skip
    out = tmp_path / "eval.jsonl"
    evaluate = ["evaluate", "--benchmark", str(suite["test"]), "--checkpoint", str(checkpoint), *common,
                "--condition", condition, "--min-fragment-samples", str(MIN_SAMPLES), "--mode", "loglik",
                "--batch-size", "8", "--out", str(out)]  # fmt: skip
    assert main([*evaluate, "--transcripts", str(transcripts)]) == 0
    items, _ = load_audio_benchmark(suite["test"])
    audio_of, errors = conditioned(items, condition)
    texts = transcribe(str(tiny_whisper_dir), list(audio_of.values()))
    lalm = build_lalm(ModelSpec.from_config(MODEL), settings, tmp_path, checkpoint=checkpoint)
    clips = {i: Clip(audio, text) for (i, audio), text in zip(audio_of.items(), texts)}
    model = GroundedLM(ModelSpec.from_config(MODEL), lalm, clips)
    probe(model, items, tmp_path / "old.jsonl", "loglik", batch_size=8, errors=errors)
    assert read_jsonl(out) == read_jsonl(tmp_path / "old.jsonl")

    # A transcripts file without one of the clips: the error names the file and the clip.
    rows = read_jsonl(transcripts)
    missing = next(r["id"] for r in rows if r["transcript"] is not None)
    write_jsonl(transcripts, [r for r in rows if r["id"] != missing])
    assert main([*evaluate, "--transcripts", str(transcripts)]) == 2
    assert f"{transcripts}: no transcript for clip '{missing}'" in caplog.text
