"""The DeSTA2.5-style audio LLM on a tiny random Whisper and the tiny LLM architectures."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperModel

from akb.audio import SAMPLE_RATE
from akb.lalm.processor import IGNORE, LALMItem
from akb.lalm.model import LALM, CheckpointError
from akb.lalm.config import LALMConfig, LoRASettings, default_taps
from akb.lalm.encoder import cut_window, load_whisper_encoder, tapped_states
from akb.lalm.encoder import feature_extractor, log_mel
from akb.lalm.model import WEIGHTS_FILE
from akb.models.base import ChatOptions
from akb.models.tiny import ARCHITECTURES, build_tiny_model

WINDOW = 2  # seconds: 200 mel frames, 100 encoder positions
CONFIG = LALMConfig(qformer_layers=2, queries_per_tap=8, qformer_intermediate_size=128,
                    window_seconds=WINDOW, max_length=200)
END_OF_TURN = {
    "qwen2": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "llama": "<|eot_id|>",
    "olmo2": "\n<|endoftext|>",
    "phi3": "<|end|>",
    "gemma": "<end_of_turn>",
    "gemma3": "<end_of_turn>",
}


def tiny_whisper(seconds: int = WINDOW, seed: int = 0) -> WhisperModel:
    config = WhisperConfig(
        d_model=64, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=128, num_mel_bins=80,
        max_source_positions=seconds * 50, max_target_positions=32, vocab_size=100,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
    )
    torch.manual_seed(seed)
    return WhisperModel(config)


def build(architecture="qwen2", config=CONFIG, chat=None, seed=0) -> LALM:
    llm, tokenizer = build_tiny_model(architecture, seed)
    torch.manual_seed(seed)
    return LALM(config, tiny_whisper(), llm, tokenizer, chat)


def clip(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


def items():
    return [
        LALMItem(clip(1.0), "Describe the audio.", "A dog barks twice.", "hello there"),
        LALMItem(clip(3.0, 1), "What is <|audio|> made of?", "Mostly noise.", ""),
        LALMItem(None, "<|audio|>\nWhat is white noise?", "Noise with a flat spectrum."),
    ]


def encode(model, text):
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


# ---- config ----

def test_default_taps():
    assert default_taps(32, 4) == [7, 15, 23, 31]  # DeSTA2.5 on Whisper-large-v3
    assert default_taps(24, 4) == [5, 11, 17, 23] and default_taps(12, 4) == [2, 5, 8, 11]
    assert default_taps(4, 2) == [1, 3] and default_taps(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        default_taps(4, 5)


def test_config_round_trips_through_json_and_resolves():
    config = LALMConfig(taps=[1, 3], lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj"]})
    assert config.lora == LoRASettings(4, 8, 0.0, ("q_proj",))
    assert LALMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="bogus"):
        LALMConfig.from_dict({**config.to_dict(), "bogus": 1})
    model = build(config=LALMConfig(window_seconds=WINDOW, queries_per_tap=4, qformer_layers=1,
                                    lora=LoRASettings()))
    resolved = model.config
    assert resolved.taps == (0, 1, 2, 3) and resolved.qformer_hidden_size == 64 and resolved.qformer_heads == 4
    assert resolved.lora.target_modules == ("k_proj", "q_proj", "v_proj")
    assert LALMConfig.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved
    with pytest.raises(ValueError, match="taps"):
        build(config=LALMConfig(window_seconds=WINDOW, taps=[2, 4]))


# ---- prompts and labels ----

@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_labels_are_exactly_response_and_end_of_turn(architecture):
    chat = ChatOptions(system_prompt="Be brief.", thinking=False if architecture == "qwen3" else None)
    model = build(architecture, chat=chat)
    assert model.processor.end_of_turn == END_OF_TURN[architecture]
    batch = model.processor(items(), train=True)
    for i, item in enumerate(items()):
        labels = batch.labels[i]
        target = labels[labels != IGNORE].tolist()
        assert target == encode(model, item.response) + encode(model, END_OF_TURN[architecture])
        assert model.tokenizer.decode(target) == item.response + END_OF_TURN[architecture]
        # The target ends the row (right padding after it) and is the input at its own positions.
        length = int(batch.attention_mask[i].sum())
        assert (labels[:length - len(target)] == IGNORE).all() and (labels[length:] == IGNORE).all()
        assert batch.input_ids[i, length - len(target):length].tolist() == target
    if architecture == "qwen3":  # the thinking switch reaches the template
        assert "<think>" in model.tokenizer.decode(batch.input_ids[0])


def test_audio_and_transcript_are_spliced_exactly():
    model = build("llama", chat=ChatOptions(system_prompt="Listen."))
    batch = model.processor(items(), train=True)
    embeds = model.embed(batch)
    audio = model.audio_vectors(batch.input_features)
    token_embeds = model.llm.get_input_embeddings()(batch.input_ids)
    assert audio.shape == (2, CONFIG.queries_per_tap, model.llm.config.hidden_size)
    for i, item in enumerate(items()[:2]):
        positions = batch.audio_mask[i].nonzero().flatten()
        start, n = int(positions[0]), CONFIG.queries_per_tap
        assert positions.tolist() == list(range(start, start + n))
        assert torch.equal(embeds[i, start:start + n], audio[i])
        assert torch.equal(embeds[i][~batch.audio_mask[i]], token_embeds[i][~batch.audio_mask[i]])
        # Rendered template = prefix + marker + suffix; the transcript sits right after the audio.
        messages = model.processor.messages(item.prompt, has_audio=True)
        rendered = model.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        before, after = rendered.split(CONFIG.audio_marker)
        transcript = encode(model, item.transcript)
        ids = batch.input_ids[i].tolist()
        assert ids[:start] == encode(model, before)
        assert ids[start + n:start + n + len(transcript)] == transcript
        end = start + n + len(transcript) + len(encode(model, after))
        assert ids[start + n + len(transcript):end] == encode(model, after)
        assert rendered.count("<|begin_of_text|>") == 1 and ids.count(model.tokenizer.bos_token_id) == 1
    assert batch.input_features.shape == (2, 80, WINDOW * 100)


def test_no_audio_means_no_marker_and_no_vectors():
    model = build("gemma3")
    item = items()[2]
    batch = model.processor([item], train=False)
    assert batch.input_features is None and not batch.audio_mask.any()
    text = model.tokenizer.decode(batch.input_ids[0])
    expected = model.tokenizer.apply_chat_template([{"role": "user", "content": "What is white noise?"}],
                                                   tokenize=False, add_generation_prompt=True)
    assert text == expected and CONFIG.audio_marker not in text
    assert torch.equal(model.embed(batch), model.llm.get_input_embeddings()(batch.input_ids))


def test_marker_placement_and_transcript_rules():
    model = build()
    first = model.processor.messages("Describe.", has_audio=True)
    assert first[-1]["content"] == f"{CONFIG.audio_marker}\nDescribe."
    with pytest.raises(ValueError, match="2 times"):
        model.processor.pieces(LALMItem(clip(1), "<|audio|> and <|audio|>"), train=False)
    with pytest.raises(ValueError, match="transcript"):
        model.processor.pieces(LALMItem(clip(1), "Describe."), train=False)
    plain = build(config=LALMConfig(**{**CONFIG.to_dict(), "use_transcript": False}))
    pieces = plain.processor.pieces(LALMItem(clip(1), "Describe.", transcript="ignored"), train=False)
    assert pieces.transcript == []


def test_truncation_shortens_the_response_and_keeps_the_end_of_turn():
    model = build("olmo2", config=LALMConfig(**{**CONFIG.to_dict(), "max_length": 60}))
    item = LALMItem(clip(1), "Describe the audio.", "a very long answer " * 40, "hi")
    batch = model.processor([item], train=True)
    assert batch.input_ids.shape[1] == 60
    target = batch.labels[0][batch.labels[0] != IGNORE].tolist()
    eot = encode(model, "\n<|endoftext|>")
    assert target[-len(eot):] == eot and len(target) > len(eot)
    assert target[:-len(eot)] == encode(model, item.response)[:len(target) - len(eot)]
    with pytest.raises(ValueError, match="max_length"):
        model.processor([LALMItem(clip(1), "long prompt " * 80, "x", "")], train=True)


# ---- encoder and connector ----

def test_encoder_window_cut_and_taps():
    whisper = tiny_whisper(seconds=30)
    full = whisper.encoder.embed_positions.weight.detach().clone()
    cut_window(whisper.encoder, WINDOW)
    assert whisper.encoder.config.max_source_positions == 100
    assert torch.equal(whisper.encoder.embed_positions.weight, full[:100])
    with pytest.raises(ValueError, match="positions"):
        cut_window(whisper.encoder, 3)
    features = log_mel(feature_extractor(80, WINDOW), [clip(0.5), clip(5.0)])  # padded, and truncated
    assert features.shape == (2, 80, 200)
    whisper.encoder.eval()
    last = tapped_states(whisper.encoder, features, [3])[0]
    assert torch.allclose(last, whisper.encoder(features).last_hidden_state)


def test_whisper_loads_from_any_wrapper_or_directory(tmp_path):
    whisper = WhisperForConditionalGeneration(tiny_whisper().config)
    whisper.save_pretrained(tmp_path / "whisper")
    encoder = load_whisper_encoder(whisper, WINDOW)
    assert encoder is whisper.model.encoder and not encoder.training
    loaded = load_whisper_encoder(tmp_path / "whisper", WINDOW)
    assert torch.equal(loaded.conv1.weight, encoder.conv1.weight)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_queries_attend_to_each_other_bidirectionally():
    model = build()
    states = tapped_states(model.encoder, log_mel(model.processor.features, [clip(1)]), model.config.taps)
    connector = model.connector.eval()
    with torch.no_grad():
        before = connector.per_tap(states)
        # change only the last query's input (randomly: the Q-Former's input LayerNorm erases a shift)
        connector.queries[:, -1] = torch.randn_like(connector.queries[:, -1])
        after = connector.per_tap(states)
    assert not torch.allclose(before[:, :, -1], after[:, :, -1])
    assert not torch.allclose(before[:, :, 0], after[:, :, 0], atol=1e-4)  # an earlier query sees a later one


def test_fusion_is_a_per_query_softmax_over_taps():
    model = build()
    connector = model.connector.eval()
    states = tapped_states(model.encoder, log_mel(model.processor.features, [clip(1)]), model.config.taps)
    with torch.no_grad():
        connector.tap_weights.copy_(torch.randn_like(connector.tap_weights))
        weights = connector.fusion_weights()
        assert weights.shape == (4, CONFIG.queries_per_tap)
        assert torch.allclose(weights.sum(0), torch.ones(CONFIG.queries_per_tap))
        assert torch.allclose(weights, connector.tap_weights.softmax(0))
        per_tap = connector.per_tap(states)
        fused = (per_tap * weights[:, None, :, None]).sum(0)
        assert torch.allclose(connector(states), connector.proj(connector.norm(fused)), atol=1e-6)
        connector.tap_weights.zero_()
        connector.tap_weights[2] = 50.0  # every query all on tap 2
        assert torch.allclose(connector(states), connector.proj(connector.norm(per_tap[2])), atol=1e-5)


# ---- parameters, gradients, checkpoints ----

@pytest.mark.parametrize(("architecture", "lora", "targets"), [
    ("qwen2", False, None), ("qwen2", True, ("k_proj", "q_proj", "v_proj")), ("phi3", True, ("qkv_proj",)),
])
def test_only_connector_and_lora_train(architecture, lora, targets):
    config = LALMConfig(**{**CONFIG.to_dict(), "lora": LoRASettings(r=2) if lora else None})
    model = build(architecture, config=config).train()
    assert not model.encoder.training and model.connector.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(model.trainable_state_dict())
    assert {n for n in trainable if not n.startswith("connector.")} == {n for n in trainable if ".lora_" in n}
    assert any(n.startswith("connector.qformer.") for n in trainable)
    lora_modules = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if ".lora_" in n}
    assert lora_modules == set(targets or ())
    if lora:
        assert model.config.lora.target_modules == targets
    else:
        assert not model.llm.training

    model.loss(items()).backward()
    for name, parameter in model.named_parameters():
        assert (parameter.grad is not None) == (name in trainable), name
    assert model.connector.queries.grad.abs().sum() > 0 and model.connector.proj.weight.grad.abs().sum() > 0


def test_checkpoint_round_trip_and_strict_keys(tmp_path):
    config = LALMConfig(**{**CONFIG.to_dict(), "lora": LoRASettings(r=2, dropout=0.0)})
    model = build(config=config)
    with torch.no_grad():  # move every trainable weight off its initial value (LoRA B starts at zero)
        for parameter in model.trainable_state_dict().values():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    batch = model.processor(items(), train=True)
    expected = model(batch).logits
    model.save_trainable(tmp_path / "ckpt")
    assert set(load_file(tmp_path / "ckpt" / WEIGHTS_FILE)) == set(model.trainable_state_dict())

    llm, tokenizer = build_tiny_model("qwen2", 0)
    torch.manual_seed(123)  # a different connector initialisation, overwritten by the checkpoint
    loaded = LALM.from_checkpoint(tmp_path / "ckpt", tiny_whisper(), llm, tokenizer)
    assert loaded.config == model.config
    assert torch.equal(loaded(batch).logits, expected)

    state = load_file(tmp_path / "ckpt" / WEIGHTS_FILE)
    save_file({**state, "connector.bogus": torch.zeros(1)}, tmp_path / "ckpt" / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="connector.bogus"):
        loaded.load_trainable(tmp_path / "ckpt")
    del state["connector.tap_weights"]
    save_file(state, tmp_path / "ckpt" / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="connector.tap_weights"):
        loaded.load_trainable(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="lora"):
        build().load_trainable(tmp_path / "ckpt")  # saved with LoRA, loading into a model without


# ---- generation ----

def test_generation_batches_clips_of_different_lengths_and_no_audio():
    model = build("olmo2")
    with torch.no_grad():
        model.connector.proj.weight.mul_(30)  # louder audio vectors, so the clips steer the answers
    batch_items = [
        LALMItem(clip(0.5), "Describe the audio.", transcript="hi"),
        LALMItem(clip(3.0, 1), "<|audio|> What is it? Answer in a long sentence.", transcript=""),
        LALMItem(None, "What is white noise?"),
    ]
    answers = model.generate(batch_items, max_new_tokens=6)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    together = model.generate_ids(batch_items, max_new_tokens=6)
    alone = [model.generate_ids([item], max_new_tokens=6)[0] for item in batch_items]
    assert together == alone  # left padding changes nothing
    assert all(0 < len(row) <= 6 for row in together)
