"""The audio-grounded stage: self-distillation data, training with resume, evaluation under conditions."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from akb.data.audio_bench import load_audio_benchmark
from akb.data.synthetic import generate_split
from akb.io import read_jsonl
from akb.lalm.distill import distill, distillation_requests, read_seeds
from akb.lalm.grounded import AudioPrompt, Clip, GroundedLM, build_lalm
from akb.lalm.model import CheckpointError
from akb.lalm.train import TrainSettings, lr_factor, sample_order, train
from akb.models import ModelSpec, load_model
from akb.probe.run import probe

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

SPEC = ModelSpec.from_config({"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3", "chat": {"thinking": False}})


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    return {split: generate_split(out, 0, split, 12, speech_engine="formant") for split in ("train", "test")}


def settings(whisper_dir, **train):
    return {
        "encoder": {"source": str(whisper_dir), "window_seconds": 5},
        "connector": {"n_taps": 2, "qformer_layers": 1, "queries_per_tap": 4, "qformer_intermediate_size": 64},
        "use_transcript": True,
        "lora": None,
        "train": {"lr": 1e-3, "warmup_steps": 2, "epochs": 1, "batch_size": 4, "grad_accum": 1,
                  "checkpoint_every": 2, "max_length": 400, "seed": 0, **train},
    }  # fmt: skip


@pytest.fixture(scope="module")
def rows(suite, tmp_path_factory):
    seeds = read_seeds(suite["train"])
    requests = distillation_requests(seeds, ["Describe the audio.", "What do you hear?"], 1, seed=0)
    out = tmp_path_factory.mktemp("distill") / "distill.jsonl"
    distill(load_model(SPEC), requests, out, batch_size=8, max_new_tokens=8)
    return read_jsonl(out)


def test_distillation_rows_answer_sampled_and_own_prompts(suite, rows):
    records = {r["id"]: r for r in json.loads(suite["train"].read_text())}
    assert len(rows) == 2 * len(records)  # one sampled prompt + the clip's own question each
    for row in rows:
        assert row["seed_description"] == records[row["clip_id"]]["metadata"]["summary"]
        assert row["audio"].endswith(f"{row['clip_id']}.wav")
        assert isinstance(row["response"], str)
    own = [r for r in rows if r["id"].endswith("#1")]
    assert all(records[r["clip_id"]]["question"] in r["prompt"] for r in own)
    # Sampling is per clip and seeded: the same seeds give the same prompts.
    again = distillation_requests(read_seeds(suite["train"]), ["Describe the audio.", "What do you hear?"], 1, 0)
    assert [r["prompt"] for r in again] == [r["prompt"] for r in rows]


def test_own_questions_asked_for_loglik_are_answered_with_an_option(suite, tmp_path):
    requests = distillation_requests(read_seeds(suite["train"]), ["Describe the audio."], 1, 0, "loglik")
    own = [r for r in requests if "choices" in r]
    assert len(own) == 12 and all(r["prompt"].startswith("Question: ") for r in own)
    distill(load_model(SPEC), requests[:6], tmp_path / "d.jsonl", batch_size=4, max_new_tokens=4)
    for row in read_jsonl(tmp_path / "d.jsonl"):
        if "choices" in row:
            assert row["response"] in row["choices"]


def test_own_questions_alone_when_no_open_prompts_are_sampled(suite):
    """The demo's recipe (prompts_per_clip 0): one request per clip, its own question."""
    requests = distillation_requests(read_seeds(suite["train"]), ["Describe the audio."], 0, 0, "loglik")
    assert len(requests) == 12 and all("choices" in r for r in requests)
    with pytest.raises(ValueError, match="prompts_per_clip is 0"):
        distillation_requests(read_seeds(suite["train"], item_questions=False), ["Describe the audio."], 0, 0)


def test_seed_jsonl_errors_name_line_and_field(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps({"id": "a", "audio": "a.wav"}) + "\n")
    with pytest.raises(ValueError, match=r"seeds.jsonl, line 1: missing field 'seed_description'"):
        read_seeds(path)
    path.write_text(json.dumps({"id": "a", "audio": "a.wav", "seed_description": "a dog barks"}) + "\n")
    with pytest.raises(FileNotFoundError, match="a.wav not found"):
        read_seeds(path)


def test_schedule_and_order_are_fixed():
    assert [round(lr_factor(s, 2, 10), 3) for s in (0, 1, 2, 10)] == [0.5, 1.0, 1.0, 0.0]
    assert list(sample_order(4, 2, 0)) == list(sample_order(4, 2, 0))
    assert sorted(sample_order(4, 2, 0)[:4]) == [0, 1, 2, 3]  # each epoch is a permutation


def _train(tmp_path, whisper_dir, rows, name, **train_settings):
    s = settings(whisper_dir, **train_settings)
    model = build_lalm(SPEC, s, tmp_path)
    transcripts = {r["clip_id"]: "" for r in rows}
    out = tmp_path / name
    summary = train(model, rows, transcripts, TrainSettings.from_config(s["train"]), out, tmp_path / f"{name}-state")
    return out, summary


def test_training_writes_checkpoint_and_resumes_exactly(tmp_path, tiny_whisper_dir, rows, monkeypatch):
    full, summary = _train(tmp_path, tiny_whisper_dir, rows, "full")
    assert summary["steps"] == 6 and summary["resumed_from_step"] == 0
    assert {p.name for p in full.iterdir()} == {"lalm.safetensors", "lalm_config.json", "loss.csv", "loss.png",
                                                "train_info.json"}  # fmt: skip
    assert len((full / "loss.csv").read_text().splitlines()) == 1 + 6

    # Interrupt a second run during step 5 (after the step-4 checkpoint), then run again.
    from akb.lalm.model import LALM

    real_loss, calls = LALM.loss, {"n": 0}

    def failing_loss(self, items):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_loss(self, items)

    monkeypatch.setattr(LALM, "loss", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, tiny_whisper_dir, rows, "resumed")
    assert not (tmp_path / "resumed").exists()  # no checkpoint that looks complete
    assert (tmp_path / "resumed-state" / "train_state.pt").is_file()
    monkeypatch.setattr(LALM, "loss", real_loss)
    resumed, summary = _train(tmp_path, tiny_whisper_dir, rows, "resumed")
    assert summary["resumed_from_step"] == 4
    want, got = load_file(full / "lalm.safetensors"), load_file(resumed / "lalm.safetensors")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert not (tmp_path / "resumed-state" / "train_state.pt").exists()


class _Planted:
    """Unpickling this runs code: it creates `marker` (a stand-in for anything worse)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_training_state_holding_code_is_refused_unrun(tmp_path, tiny_whisper_dir, rows):
    marker = tmp_path / "code-ran"
    (tmp_path / "planted-state").mkdir()
    torch.save({"step": 1, "losses": [], "payload": _Planted(marker)}, tmp_path / "planted-state" / "train_state.pt")
    with pytest.raises(CheckpointError, match=r"planted-state/train_state.pt: refused: the training state holds "
                                              r"more than tensors"):
        _train(tmp_path, tiny_whisper_dir, rows, "planted")
    assert not marker.exists() and not (tmp_path / "planted").exists()


def test_lora_training_saves_adapters(tmp_path, tiny_whisper_dir, rows):
    s = settings(tiny_whisper_dir, max_steps=1)
    s["lora"] = {"r": 4, "alpha": 8, "dropout": 0.0}
    model = build_lalm(SPEC, s, tmp_path)
    train(model, rows, {r["clip_id"]: "" for r in rows}, TrainSettings.from_config(s["train"]), tmp_path / "ck",
          tmp_path / "st")  # fmt: skip
    keys = load_file(tmp_path / "ck" / "lalm.safetensors").keys()
    assert any(".lora_A." in k for k in keys) and any(k.startswith("connector.") for k in keys)


@pytest.mark.parametrize("mode", ["generate", "loglik"])
def test_evaluation_conditions_give_rows_for_every_item(tmp_path, tiny_whisper_dir, rows, suite, mode):
    checkpoint, _ = _train(tmp_path, tiny_whisper_dir, rows, "ck", max_steps=1)
    lalm = build_lalm(SPEC, settings(tiny_whisper_dir), tmp_path, checkpoint=checkpoint)
    items, _ = load_audio_benchmark(suite["test"])
    rng = np.random.default_rng(0)
    clips = {it.id: Clip(rng.normal(0, 0.1, 16000).astype(np.float32), "") for it in items}
    clips[items[0].id] = Clip(None)  # the no-audio condition for one item
    model = GroundedLM(SPEC, lalm, clips)
    out = tmp_path / f"{mode}.jsonl"
    probe(model, items, out, mode, batch_size=8, max_new_tokens=4, errors={items[1].id: "clip too short"})
    got = read_jsonl(out)
    assert [r["id"] for r in got] == [it.id for it in items]
    assert got[1]["parse_status"] == "error" and got[1]["correct"] is False and got[1]["error"] == "clip too short"
    assert all(r["parse_status"] != "error" for r in got[2:])
    prompt = model.item_prompt(items[2], "Which?")
    assert isinstance(prompt, AudioPrompt) and prompt == "Which?" and prompt.item_id == items[2].id


def test_loglik_of_an_option_matches_a_manual_sum(tmp_path, tiny_whisper_dir, rows):
    """The option log-likelihood is the sum over the option's tokens of the model's log-probabilities."""
    s = settings(tiny_whisper_dir)
    lalm = build_lalm(SPEC, s, tmp_path)
    audio = np.random.default_rng(1).normal(0, 0.1, 8000).astype(np.float32)
    model = GroundedLM(SPEC, lalm, {"x": Clip(audio, "")})
    prompt = AudioPrompt("Question: what?\nAnswer:", "x")
    (single,) = model.loglikelihood([(prompt, "pink noise")])
    pair = model.loglikelihood([(prompt, "pink noise"), (prompt, "a much longer option text here")])
    assert single.logprob == pytest.approx(pair[0].logprob, abs=1e-4)  # padding does not change it
    option_ids = lalm.processor.encode("pink noise")
    assert single.n_tokens == len(option_ids) and single.logprob < 0


def test_the_audio_llm_can_be_asked_in_destas_convention(tmp_path, tiny_whisper_dir, rows, suite):
    """grounded.evaluate.prompt_style: desta: DeSTA2.5's quoted options, and its system prompt inside
    the audio LLM's own chat template."""
    from akb.probe.prompts import DESTA_SYSTEM_PROMPT, styled_spec

    checkpoint, _ = _train(tmp_path, tiny_whisper_dir, rows, "ck", max_steps=1)
    spec = styled_spec(SPEC, "desta")
    lalm = build_lalm(spec, settings(tiny_whisper_dir), tmp_path, checkpoint=checkpoint)
    items, _ = load_audio_benchmark(suite["test"])
    items = items[:3]
    clips = {it.id: Clip(np.zeros(16000, dtype=np.float32), "") for it in items}
    model = GroundedLM(spec, lalm, clips)
    out = tmp_path / "desta.jsonl"
    probe(model, items, out, "generate", batch_size=4, max_new_tokens=4, style="desta")
    for row, item in zip(read_jsonl(out), items):
        assert row["prompt"].endswith(" or " + f'"{item.choices[-1]}"') and "(A)" not in row["prompt"]
    before, after = lalm.processor.prompt_text("Which?", has_audio=True)
    assert DESTA_SYSTEM_PROMPT in before  # the system turn, rendered by the backbone's template
    assert after.startswith("\nWhich?")  # the audio first, then the instruction, as DeSTA asks
