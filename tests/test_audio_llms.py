"""Published audio LLMs as evaluation backends (akb.audio_llms, `akb evaluate-audio-llm`): every
transformers backend on a tiny random model of its real class, the api backend against a loopback
server, the conditions of All That Glitters, and the rows `akb score-audio` reads."""

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf
from conftest import require_optional
from test_api_backend import KEY_ENV, Handler, running_server
from test_captioners_qwen3_omni import build_tiny_qwen3_omni, no_video_half

from akb.audio import SAMPLE_RATE
from akb.audio_llms import AUDIO_LLM_BACKENDS, backend_names, load_audio_llm
from akb.audio_llms.backends.api import APIAudioLLM
from akb.audio_llms.backends.audio_flamingo3 import AudioFlamingo3LLM
from akb.audio_llms.backends.phi4_multimodal import Phi4MultimodalLLM
from akb.audio_llms.backends.qwen import Qwen2AudioLLM, Qwen3OmniLLM, Qwen25OmniLLM
from akb.audio_llms.backends.voxtral import VoxtralLLM
from akb.audio_llms.evaluate import evaluate_audio_llm
from akb.audio_llms.tiny import tiny_audio_flamingo3, tiny_phi4_multimodal, tiny_qwen2_5_omni_thinker, tiny_qwen2_audio
from akb.audio_llms.tiny import tiny_voxtral
from akb.cli import main
from akb.config import ConfigError, validate_config
from akb.data.audio_bench import load_audio_benchmark
from akb.scoring.audio import score_audio_predictions
from akb.io import read_jsonl

SECONDS = (0.6, 1.4, 0.15, 1.0)  # the 0.15 s clip cannot be cut into 2 pieces of >= 0.1 s
CHOICES = ["a dog", "a violin", "a man speaking", "rain"]
TEXT_BACKBONE = {"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    records = []
    for i, seconds in enumerate(SECONDS):
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        (root / "audio").mkdir(exist_ok=True)
        sf.write(root / f"audio/c{i}.wav", 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t), SAMPLE_RATE)
        records.append({"id": f"q{i}", "audio_id": f"audio/c{i}.wav", "question": f"What is heard ({i})?",
                        "choices": CHOICES, "answer": CHOICES[i], "task": ["sound", "music", "speech"][i % 3],
                        "category": "Reasoning", "sub-category": "Source"})
    path = root / "mmau.json"
    path.write_text(json.dumps(records))
    items, _ = load_audio_benchmark(str(path), "mmau", None, "error")
    return path, items


def _run(items, llm, condition, out, batch_size=4, **kw):
    entry = {"name": "tiny", "backend": llm.backend, "source": "tiny", "text_backbone": "tiny-qwen3"}
    evaluate_audio_llm(items, entry, condition, out, max_new_tokens=4, batch_size=batch_size, llm=llm, **kw)
    return {row["id"]: row for row in read_jsonl(out)}


def test_the_registry_names_every_backend():
    assert set(backend_names()) >= {"qwen2-audio", "qwen2.5-omni", "qwen3-omni", "phi4-multimodal", "voxtral",
                                     "audio-flamingo-3", "api", "desta2.5-audio"}
    assert AUDIO_LLM_BACKENDS["qwen2-audio"] is Qwen2AudioLLM and Qwen2AudioLLM.backend == "qwen2-audio"
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        load_audio_llm({"name": "x", "backend": "nope", "source": "s"})
    # the refusal says why and how to get DeSTA2.5's answers instead: the authors' package and its script
    with pytest.raises(ValueError, match=r"desta2.5-audio cannot be loaded: .*BertEncoder.*pip install -e "
                                         r"DeSTA2.5-Audio.*python inference_desta25_audio.py .*backend 'api'"):
        load_audio_llm({"name": "desta", "backend": "desta2.5-audio", "source": "DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B"})


def _qwen3_omni():
    with no_video_half():
        model, processor = build_tiny_qwen3_omni()
    return model, processor


def _voxtral():
    from transformers.utils import is_mistral_common_available

    # the `voxtral` extra: .ci/setup-venv installs it and .ci/run requires it
    require_optional("mistral-common", is_mistral_common_available(), "pip install -e '.[voxtral]'")
    return tiny_voxtral()


@pytest.mark.parametrize("backend, build", [
    (Qwen2AudioLLM, tiny_qwen2_audio),
    (Qwen25OmniLLM, tiny_qwen2_5_omni_thinker),
    (Qwen3OmniLLM, _qwen3_omni),
    (AudioFlamingo3LLM, tiny_audio_flamingo3),
    (Phi4MultimodalLLM, tiny_phi4_multimodal),
    (VoxtralLLM, _voxtral),
], ids=["qwen2-audio", "qwen2.5-omni", "qwen3-omni", "audio-flamingo-3", "phi4-multimodal", "voxtral"])
def test_conditions_on_a_tiny_model_of_each_class(tmp_path, bench, one_torch_thread, backend, build):
    _, items = bench
    llm = backend(*build(), name="tiny")
    full = _run(items, llm, "full", tmp_path / "full.jsonl")
    assert sorted(full) == [it.id for it in items] and all(isinstance(r["raw_output"], str) for r in full.values())
    one_by_one = _run(items, llm, "full", tmp_path / "full1.jsonl", batch_size=1)
    assert {i: r["raw_output"] for i, r in one_by_one.items()} == {i: r["raw_output"] for i, r in full.items()}

    # none: the prompt without any audio placeholder, the model gets no audio
    text = llm.render("Q?", has_audio=False)
    assert llm.processor.audio_token not in text and "Q?" in text
    none = _run(items, llm, "none", tmp_path / "none.jsonl")
    assert none["q0"]["raw_output"] == llm.generate([None], [none["q0"]["prompt"]], 4)[0]

    # a fragment: the second half of each clip; the 0.15 s clip is an error row, never padded
    fragment = _run(items, llm, "fragment-2-1", tmp_path / "frag.jsonl")
    assert fragment["q2"]["error"].startswith("clip of 2400 samples is too short to cut into 2 pieces")
    assert fragment["q2"]["correct"] is False and fragment["q2"]["raw_output"] is None
    clip = sf.read(bench[0].parent / "audio/c1.wav", dtype="float32")[0]
    assert fragment["q1"]["raw_output"] == llm.generate([clip[clip.size // 2:]], [fragment["q1"]["prompt"]], 4)[0]


def test_voxtral_loads_a_checkpoint_directory_and_hears_long_clips_whole(tmp_path, one_torch_thread):
    """The user's path: a saved checkpoint (tekken.json, no Jinja template) read back by the backend;
    each started 30 s of a clip is 375 [AUDIO] tokens after one [BEGIN_AUDIO], nothing is cut."""
    model, processor = _voxtral()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    llm = load_audio_llm({"name": "vox", "backend": "voxtral", "source": str(tmp_path), "device": "cpu"})
    assert isinstance(llm, VoxtralLLM) and llm.eos_token_ids == [processor.tokenizer.eos_token_id]
    assert llm.render("Q?", has_audio=False) == "<s>[INST]Q?[/INST]"
    with_audio = llm.render("Q?", has_audio=True)
    assert with_audio.startswith("<s>[INST][BEGIN_AUDIO][AUDIO]") and with_audio.endswith("[AUDIO]Q?[/INST]")
    assert with_audio.count("[AUDIO]") == 375

    clips = [np.full(31 * SAMPLE_RATE, 0.1, dtype=np.float32), np.full(SAMPLE_RATE, 0.1, dtype=np.float32)]
    assert [clip.size for clip in llm.prepare(clips)] == [31 * SAMPLE_RATE, SAMPLE_RATE]  # what generate hears
    inputs = llm.inputs(clips, ["long", "short"])
    assert (inputs["input_ids"] == processor.audio_token_id).sum(dim=1).tolist() == [750, 375]
    assert inputs["input_features"].shape[0] == 3  # 30 s windows: two for the long clip, one for the short
    assert all(isinstance(reply, str) for reply in llm.generate(clips, ["long", "short"], 2))


def test_voxtral_without_mistral_common_says_what_to_install(monkeypatch):
    monkeypatch.setattr("transformers.utils.is_mistral_common_available", lambda: False)
    with pytest.raises(ValueError, match=r"audio LLM vox \(voxtral\): .*needs mistral-common.*\[voxtral\]"):
        load_audio_llm({"name": "vox", "backend": "voxtral", "source": "mistralai/Voxtral-Mini-3B-2507"})


def test_backbone_asks_the_text_backbone_and_checks_its_name(tmp_path, bench, one_torch_thread):
    _, items = bench
    entry = {"name": "tiny", "backend": "qwen2-audio", "source": "unused", "text_backbone": "tiny-qwen3"}
    evaluate_audio_llm(items, entry, "backbone", tmp_path / "b.jsonl", max_new_tokens=3, text_backbone=TEXT_BACKBONE)
    rows = read_jsonl(tmp_path / "b.jsonl")
    assert [r["id"] for r in rows] == [it.id for it in items] and all(isinstance(r["raw_output"], str) for r in rows)
    assert "user\nWhat is heard (0)?\n\nOptions:\nA: a dog\nB: a violin" in rows[0]["prompt"]  # no system turn
    with pytest.raises(ValueError, match="text_backbone is 'other'"):
        evaluate_audio_llm(items, entry | {"text_backbone": "other"}, "backbone", tmp_path / "x.jsonl",
                           text_backbone=TEXT_BACKBONE)
    with pytest.raises(ValueError, match="needs the text backbone"):
        evaluate_audio_llm(items, entry, "backbone", tmp_path / "x.jsonl")


def _wav(request_body):
    content = request_body["messages"][-1]["content"]
    audio = [c for c in content if c["type"] == "input_audio"]
    return None if not audio else sf.read(io.BytesIO(base64.b64decode(audio[0]["input_audio"]["data"])))[0]


class OptionHandler(Handler):
    """Answers "B: a violin" to every request."""

    def respond(self, action, body):
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": " B: a violin "},
                              "finish_reason": "stop"}]}
        self.send(200, json.dumps(reply).encode())


def test_api_backend_via_the_command_resumes_and_scores(tmp_path, bench, monkeypatch):
    path, items = bench
    with running_server(monkeypatch, OptionHandler) as server:
        entry = {"name": "remote", "backend": "api", "source": "fake-audio-1", "text_backbone": "tiny-qwen3",
                 "api": {"base_url": server.url, "key_env": KEY_ENV, "cache_dir": str(tmp_path / "cache"),
                         "backoff_base_s": 0.001, "max_retries": 1, "timeout_s": 5}}
        assert isinstance(load_audio_llm(entry), APIAudioLLM)

        def run(condition, out):
            return main(["evaluate-audio-llm", "--benchmark", str(path), "--audio-llm", json.dumps(entry),
                         "--condition", condition, "--prompt-style", "glitters", "--max-new-tokens", "8",
                         "--batch-size", "2", "--out", str(out)])

        assert run("full", tmp_path / "full.jsonl") == 0
        bodies = [r["body"] for r in server.requests]
        assert len(bodies) == 4 and all(b["model"] == "fake-audio-1" for b in bodies)
        heard = sorted(_wav(b).size for b in bodies)
        assert heard == sorted(int(s * SAMPLE_RATE) for s in SECONDS)  # every clip, whole, at 16 kHz
        assert run("full", tmp_path / "again.jsonl") == 0 and len(server.requests) == 4  # answered from the cache

        assert run("none", tmp_path / "none.jsonl") == 0
        none_bodies = [r["body"] for r in server.requests[4:]]
        assert len(none_bodies) == 4 and all(_wav(b) is None for b in none_bodies)
        assert "Answer with the full option text" in none_bodies[0]["messages"][-1]["content"][0]["text"]

        assert run("fragment-4-9", tmp_path / "bad.jsonl") == 2  # one log line, no traceback
    rows = read_jsonl(tmp_path / "full.jsonl")
    assert [r["id"] for r in rows] == [it.id for it in items] and {r["raw_output"] for r in rows} == {"B: a violin"}
    assert [r["correct"] for r in rows] == [False, True, False, False]
    scores = score_audio_predictions(items, rows, n_resamples=10, seed=0)  # the rows `akb score-audio` reads
    assert scores["accuracy"] == pytest.approx(25.0) and scores["missing"] == 0


def test_text_backbone_must_be_a_declared_model():
    config = {"models": [TEXT_BACKBONE], "audio_llms": [
        {"name": "q2a", "backend": "qwen2-audio", "source": "Qwen/Qwen2-Audio-7B-Instruct", "text_backbone": "nope"}]}
    with pytest.raises(ConfigError, match=r"audio_llms\[0\].text_backbone \(q2a\): unknown model 'nope'"):
        validate_config(config)
    config["audio_llms"][0]["text_backbone"] = "tiny-qwen3"
    assert validate_config(config)["audio_llms"][0]["max_new_tokens"] == 32
