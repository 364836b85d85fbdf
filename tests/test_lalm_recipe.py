"""DeSTA2.5's recipe details, each a setting whose absence keeps the behaviour from before it existed:
own prompts per seed row, seed transcripts, voice activity before Whisper, a transcript cap, the
last tap before Whisper's final LayerNorm, and truncation that cuts the end-of-turn."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from test_lalm_model import CONFIG, build, clip, encode, tiny_whisper
from test_workflow import ROOT, e2e_config, snakemake

from akb.audio import SAMPLE_RATE, load_audio
from akb.captioners.whisper import WhisperCaptioner
from akb.data.synthetic import generate_split
from akb.io import read_jsonl
from akb.lalm.processor import IGNORE, LALMItem
from akb.lalm.config import LALMConfig
from akb.lalm.encoder import tapped_states
from akb.lalm.distill import Seed, distillation_requests, read_seeds
from akb.lalm.encoder import feature_extractor, log_mel
from akb.lalm.grounded import AudioPrompt, Clip, GroundedLM, lalm_config
from akb.lalm.transcripts import write_transcripts
from akb.lalm.vad import SpeechDetector
from akb.models import ModelSpec

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning"),
              pytest.mark.usefixtures("one_torch_thread")]


def with_(**changes) -> LALMConfig:
    return replace(CONFIG, **changes)


# ---- the settings themselves ----

def grounded_settings(**extra):
    settings = {"encoder": {"window_seconds": 2}, "connector": {"n_taps": 2, "qformer_layers": 1},
                "use_transcript": True, "lora": None, "train": {"max_length": 200}}
    for key, value in extra.items():
        section, _, name = key.rpartition("__")
        (settings[section] if section else settings)[name] = value
    return settings


def test_absent_settings_keep_the_previous_recipe_and_desta_values_round_trip():
    before = lalm_config(grounded_settings())
    assert (before.last_tap, before.truncation, before.transcript_max_tokens) == ("post_layer_norm", "response", None)
    desta = lalm_config(grounded_settings(connector__last_tap="pre_layer_norm", train__truncation="sequence",
                                          transcript_max_tokens=100))
    assert (desta.last_tap, desta.truncation, desta.transcript_max_tokens) == ("pre_layer_norm", "sequence", 100)
    assert LALMConfig.from_dict(json.loads(json.dumps(desta.to_dict()))) == desta
    # A checkpoint saved before these fields existed reads as the previous recipe.
    old = {k: v for k, v in before.to_dict().items() if k not in ("last_tap", "truncation", "transcript_max_tokens")}
    assert LALMConfig.from_dict(old) == before
    for bad in ({"last_tap": "middle"}, {"truncation": "left"}, {"transcript_max_tokens": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LALMConfig(**bad)


# ---- 4. the last tap, before or after Whisper's final LayerNorm ----

def desta_layer_loop(encoder, features):
    """Each layer's output as DeSTA2.5's own loop computes it: convolutions, positions, then the
    layers one by one, and no final LayerNorm."""
    h = torch.nn.functional.gelu(encoder.conv1(features))
    h = torch.nn.functional.gelu(encoder.conv2(h)).permute(0, 2, 1)
    h = h + encoder.embed_positions.weight[: encoder.config.max_source_positions]
    outputs = []
    for layer in encoder.layers:
        h = layer(h, None)
        h = h[0] if isinstance(h, tuple) else h
        outputs.append(h)
    return outputs


def test_last_tap_before_the_final_layer_norm_is_desta_layer_output():
    encoder = tiny_whisper().encoder.eval()
    features = log_mel(feature_extractor(80, 2), [clip(1.5), clip(0.7, 1)])
    tapped_states(encoder, features, [3])  # transformers installs its own hooks on a first call
    hooks = dict(encoder.layers[3]._forward_hooks)
    with torch.no_grad():
        loop = desta_layer_loop(encoder, features)
        post = tapped_states(encoder, features, [1, 3])
        pre = tapped_states(encoder, features, [1, 3], last_tap="pre_layer_norm")
        assert torch.allclose(pre[1], loop[3], atol=1e-5)  # DeSTA's tap of the last layer
        assert torch.allclose(post[1], encoder.layer_norm(loop[3]), atol=1e-5)  # transformers' last hidden state
        assert not torch.allclose(pre[1], post[1], atol=1e-3)
    # Only the last layer's entry differs; taps short of the last layer are the same either way.
    assert torch.equal(pre[0], post[0]) and torch.allclose(pre[0], loop[1], atol=1e-5)
    shallow = tapped_states(encoder, features, [0, 2], last_tap="pre_layer_norm")
    assert all(torch.equal(a, b) for a, b in zip(shallow, tapped_states(encoder, features, [0, 2])))
    assert dict(encoder.layers[3]._forward_hooks) == hooks  # the hook that took the tap is gone
    with pytest.raises(ValueError, match="last_tap"):
        tapped_states(encoder, features, [3], last_tap="after")


def test_the_model_feeds_its_connector_the_configured_last_tap():
    post, pre = build(config=CONFIG), build(config=with_(last_tap="pre_layer_norm"))
    features = log_mel(post.processor.features, [clip(1.0)])
    with torch.no_grad():
        states = tapped_states(pre.encoder, features, pre.config.taps, "pre_layer_norm")
        assert torch.equal(pre.audio_vectors(features), pre.connector(states))
        assert not torch.allclose(pre.audio_vectors(features), post.audio_vectors(features), atol=1e-4)


# ---- transcripts capped in tokens of the LLM ----

def test_transcript_cap_keeps_the_first_tokens_after_the_audio():
    text = "one two three four five six seven eight nine ten eleven twelve"
    model = build(config=with_(transcript_max_tokens=5))
    ids = encode(model, text)
    assert len(ids) > 5
    item = LALMItem(clip(1.0), "Describe the audio.", "A voice.", text)
    assert model.processor.pieces(item, train=False).transcript == ids[:5]
    batch = model.processor([item], train=True)
    start = int(batch.audio_mask[0].nonzero()[-1]) + 1
    assert batch.input_ids[0, start:start + 5].tolist() == ids[:5]
    assert build(config=CONFIG).processor.pieces(item, train=False).transcript == ids  # unset: all of it
    assert build(config=with_(transcript_max_tokens=0)).processor.pieces(item, train=False).transcript == []


# ---- 5. truncation ----

def target_of(batch, row=0):
    labels = batch.labels[row]
    return labels[labels != IGNORE].tolist()


@pytest.mark.parametrize("architecture", ["qwen2", "olmo2"])  # one end-of-turn token, and two
def test_sequence_truncation_cuts_the_end_of_turn_as_desta_does(architecture):
    sequence = build(architecture, config=with_(max_length=60, truncation="sequence"))
    response = build(architecture, config=with_(max_length=60))
    eot = sequence.processor.end_of_turn_ids
    long = LALMItem(clip(1), "Describe the audio.", "a very long answer " * 40, "hi")
    prompt = len(sequence.processor.pieces(long, train=False))
    cut, kept = sequence.processor([long], train=True), response.processor([long], train=True)
    assert cut.input_ids.shape[1] == kept.input_ids.shape[1] == 60
    # DeSTA2.5: (prompt + response + end-of-turn)[:max_length]; the end-of-turn is gone.
    assert target_of(cut) == (encode(sequence, long.response) + eot)[: 60 - prompt]
    assert eot[-1] not in target_of(cut)
    # The previous behaviour, and the default: the response gives way to the end-of-turn.
    assert target_of(kept)[-len(eot):] == eot
    assert target_of(kept) == encode(response, long.response)[: 60 - prompt - len(eot)] + eot
    # A target that fits is the same either way: response + end-of-turn.
    short = LALMItem(clip(1), "Describe the audio.", "A dog barks.", "hi")
    assert target_of(sequence.processor([short], train=True)) == encode(sequence, "A dog barks.") + eot
    assert target_of(response.processor([short], train=True)) == encode(sequence, "A dog barks.") + eot
    # A prompt that leaves no room for a target is an error in both.
    for model in (sequence, response):
        with pytest.raises(ValueError, match="max_length"):
            model.processor([LALMItem(clip(1), "long prompt " * 80, "x", "")], train=True)


def test_option_scores_ignore_the_training_truncation():
    """Log-likelihood scoring always keeps the end-of-turn it leaves out, whatever the recipe's truncation."""
    spec = ModelSpec.from_config({"name": "tiny-qwen2", "backend": "tiny", "source": "qwen2"})
    audio = clip(1.0)
    scores = []
    for truncation in ("response", "sequence"):
        model = GroundedLM(spec, build(config=with_(max_length=40, truncation=truncation)), {"x": Clip(audio, "hi")})
        scores.append(model.loglikelihood([(AudioPrompt("Which?", "x"), "word " * 60), (AudioPrompt("Which?", "x"), "noise")]))
    assert [s.n_tokens for s in scores[0]] == [s.n_tokens for s in scores[1]]
    assert [s.logprob for s in scores[0]] == pytest.approx([s.logprob for s in scores[1]], abs=1e-4)
    # The long option was cut to fit (so `sequence` would have cut the end-of-turn); the short one is whole.
    assert scores[0][0].n_tokens < len(encode(build(), "word " * 60))
    assert scores[0][1].n_tokens == len(encode(build(), "noise"))


# ---- 1. one prompt per seed row, its own ----

def test_own_prompt_replace_asks_each_row_its_own_prompt_alone(tmp_path):
    seeds = [Seed("a", "a.wav", "[00:00-00:02] hello (Gender: female)", ("What is said?",)),
             Seed("b", "b.wav", "[00:00-00:05] (dog barking)")]
    pool = ["Describe the audio.", "What can you hear?", "Summarise it."]
    added = distillation_requests(seeds, pool, 1, seed=0)
    assert [r["clip_id"] for r in added] == ["a", "a", "b"] and added[1]["prompt"] == "What is said?"
    desta = distillation_requests(seeds, pool, 1, seed=0, own_prompt="replace")
    assert [(r["id"], r["prompt"]) for r in desta] == [("a#0", "What is said?"), ("b#0", added[2]["prompt"])]
    assert desta[0]["seed_description"] == seeds[0].description
    with pytest.raises(ValueError, match="own_prompt"):
        distillation_requests(seeds, pool, 1, seed=0, own_prompt="both")


# ---- 2 and 3. seed transcripts, and voice activity before Whisper ----

@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    return generate_split(out, 1, "train", 12, speech_engine="formant")


@pytest.fixture(scope="module")
def detector():
    return SpeechDetector()  # the TorchScript model from inside the silero-vad wheel: no download


class Heard:
    """A Whisper captioner that also records how many clips of which lengths it was asked to transcribe."""

    def __init__(self, asr):
        self.asr, self.lengths = asr, []

    def transcribe(self, audios):
        self.lengths += [len(a) for a in audios]
        return self.asr.transcribe(audios)


def test_silero_finds_speech_in_voices_and_none_in_silence_noise_or_tones(detector, suite):
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    assert not detector(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert not detector((0.1 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE)).astype(np.float32))
    assert not detector((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert not detector(np.zeros(100, np.float32))  # shorter than one VAD frame
    verdicts = {s.description: detector(load_audio(s.audio)) for s in read_seeds(suite)}
    assert any(v for d, v in verdicts.items() if " says " in d or " sustains " in d)
    assert not any(v for d, v in verdicts.items() if "noise" in d and " says " not in d)


def test_vad_gates_whisper_and_seed_transcripts_skip_it(suite, tiny_whisper_dir, detector, tmp_path):
    seeds = read_seeds(suite)
    audio_of = {s.clip_id: s.audio for s in seeds}
    asr = WhisperCaptioner.from_pretrained(str(tiny_whisper_dir))
    plain = tmp_path / "plain.jsonl"
    write_transcripts(asr, audio_of, plain, batch_size=4)
    whisper = {r["id"]: r["transcript"] for r in read_jsonl(plain)}

    heard, gated = Heard(asr), tmp_path / "vad.jsonl"
    write_transcripts(heard, audio_of, gated, batch_size=4, has_speech=detector)
    rows = {r["id"]: r for r in read_jsonl(gated)}
    speech = {s.clip_id: detector(load_audio(s.audio)) for s in seeds}
    assert 0 < sum(speech.values()) < len(seeds)
    for key, spoken in speech.items():
        # A clip with speech keeps Whisper's transcript; one without gets none and never reaches Whisper.
        assert rows[key] == ({"id": key, "transcript": whisper[key]} if spoken else
                             {"id": key, "transcript": "", "speech": False})
    assert len(heard.lengths) == sum(speech.values())

    given = {seeds[0].clip_id: "the dataset's own words", seeds[1].clip_id: ""}
    heard, mixed = Heard(asr), tmp_path / "seeds.jsonl"
    write_transcripts(heard, audio_of, mixed, batch_size=4, given=given)
    rows = read_jsonl(mixed)
    assert [r["id"] for r in rows] == list(audio_of)  # seed order, as always
    for row in rows:
        assert row == ({"id": row["id"], "transcript": given[row["id"]], "source": "seeds"} if row["id"] in given
                       else {"id": row["id"], "transcript": whisper[row["id"]]})
    assert len(heard.lengths) == len(seeds) - 2
    with pytest.raises(ValueError, match="whole clips"):
        write_transcripts(asr, audio_of, tmp_path / "frag.jsonl", given=given, condition="fragment-2-1")


def test_transcribe_cli_keeps_seed_transcripts_and_gates_the_rest(suite, tiny_whisper_dir, detector, tmp_path):
    from akb.cli import main

    seeds = read_seeds(suite)
    jsonl = tmp_path / "seeds.jsonl"
    with jsonl.open("w") as f:
        for k, s in enumerate(seeds):
            row = {"id": s.clip_id, "audio": s.audio, "seed_description": s.description, "prompt": "Describe it."}
            f.write(json.dumps(row | ({"transcript": f"words of clip {k}"} if k % 2 else {})) + "\n")
    out = tmp_path / "train.jsonl"
    assert main(["transcribe", "--seeds", str(jsonl), "--whisper", str(tiny_whisper_dir), "--batch-size", "4",
                 "--threads", "1", "--seed-transcripts", "--vad", "--out", str(out)]) == 0  # fmt: skip
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [s.clip_id for s in seeds]
    for k, (s, row) in enumerate(zip(seeds, rows)):
        if k % 2:
            assert row["transcript"] == f"words of clip {k}" and row["source"] == "seeds"
        elif not detector(load_audio(s.audio)):
            assert row["transcript"] == "" and row["speech"] is False
        else:
            assert "source" not in row and "speech" not in row
    assert main(["transcribe", "--benchmark", str(suite), "--whisper", str(tiny_whisper_dir),
                 "--seed-transcripts", "--out", str(tmp_path / "b.jsonl")]) == 2  # fmt: skip


# ---- the workflow passes each setting on, and nothing new when they are unset ----

NEW_KEYS = ("last_tap", "truncation", "transcript_max_tokens", "own_prompt", "seed_transcripts", "vad")


def plan(tmp_path, **grounded):
    tmp_path.mkdir()
    path = e2e_config(tmp_path, tmp_path / "whisper")
    config = yaml.safe_load(path.read_text())
    config["grounded"]["use_transcript"] = True
    for key, value in grounded.items():
        if isinstance(value, dict):
            config["grounded"].setdefault(key, {}).update(value)
        else:
            config["grounded"][key] = value
    path.write_text(yaml.safe_dump(config))
    jobs = snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path)).stdout.split("\n\n")
    return {rule: [j for j in jobs if f"rule {rule}:" in j]
            for rule in ("distill_data", "transcribe_training_clips", "transcribe_benchmark", "train_lalm")}


def test_workflow_passes_the_desta_settings_only_when_set(tmp_path):
    plain = plan(tmp_path / "plain")
    assert plain["distill_data"] and plain["transcribe_training_clips"] and plain["train_lalm"]
    for job in sum(plain.values(), []):
        assert not any(key in job for key in NEW_KEYS) and "--own-prompt" not in job and "--vad" not in job
    desta = plan(tmp_path / "desta", connector={"last_tap": "pre_layer_norm"}, train={"truncation": "sequence"},
                 transcript_max_tokens=100, distill={"own_prompt": "replace"},
                 transcribe={"seed_transcripts": True, "vad": True})
    assert all(re.search(r"--question-mode (loglik|generate) --own-prompt replace --seed", j)
               for j in desta["distill_data"])
    (training,) = desta["transcribe_training_clips"]
    assert "--batch-size 16 --seed-transcripts --vad --threads" in training
    assert desta["transcribe_benchmark"] and all("--batch-size 16 --vad --threads" in j and "--seed-transcripts"
                                                 not in j for j in desta["transcribe_benchmark"])
    for job in desta["train_lalm"]:
        assert all(key in job for key in ("last_tap", "truncation", "transcript_max_tokens"))
        assert "seed_transcripts" not in job  # the transcription jobs' alone: training is not rerun for it
