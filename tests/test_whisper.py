"""Whisper: the CTranslate2 -> transformers conversion (demo ASR model) and the `whisper` captioner."""

import json
import struct

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration

from akb.captioners.whisper import NO_SPEECH, WhisperCaptioner, transcript_caption
from akb.models.ctranslate2_whisper import convert_whisper, read_ctranslate2

from conftest import D_MODEL, HEADS, LAYERS, tiny_whisper, whisper_tokenizer_json

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _write_ctranslate2(model: WhisperForConditionalGeneration, path) -> None:
    """The inverse of the converter's mapping: what CTranslate2's own converter writes (fused q/k/v,
    gamma/beta, float16, the tied projection as an alias), in the model.bin format."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    var: dict[str, np.ndarray] = {}

    def norm(ct2, hf):
        var[f"{ct2}/gamma"], var[f"{ct2}/beta"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def linear(ct2, hf):
        var[f"{ct2}/weight"], var[f"{ct2}/bias"] = sd[f"{hf}.weight"], sd[f"{hf}.bias"]

    def fused(ct2, hfs):
        var[f"{ct2}/weight"] = np.concatenate([sd[f"{h}.weight"] for h in hfs])
        zero = np.zeros(D_MODEL, np.float16)
        var[f"{ct2}/bias"] = np.concatenate([sd.get(f"{h}.bias", zero) for h in hfs])

    for stack in ("encoder", "decoder"):
        var[f"{stack}/num_heads"] = np.array(HEADS, np.int16)
        var[f"{stack}/position_encodings/encodings"] = sd[f"model.{stack}.embed_positions.weight"]
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for i in range(LAYERS):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            fused(f"{ct2}/self_attention/linear_0", [f"{hf}.self_attn.{p}_proj" for p in "qkv"])
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
            if stack == "decoder":
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fused(f"{ct2}/attention/linear_1", [f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"])
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    var["decoder/embeddings/weight"] = sd["model.decoder.embed_tokens.weight"]

    def string(text):
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    codes = {np.dtype(np.float16): 4, np.dtype(np.int16): 2}
    blob = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, len(var))
    for name, arr in var.items():
        blob += string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        blob += struct.pack("<BI", codes[arr.dtype], arr.nbytes) + arr.tobytes()
    blob += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    path.write_bytes(blob)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    src = tmp_path_factory.mktemp("ct2")
    reference = tiny_whisper()
    _write_ctranslate2(reference, src / "model.bin")
    whisper_tokenizer_json(src / "tokenizer.json")
    (src / "config.json").write_text(json.dumps({"suppress_ids": [9], "suppress_ids_begin": [7]}))
    out = tmp_path_factory.mktemp("hf") / "whisper"
    convert_whisper(src, out)
    return reference, out


def test_read_ctranslate2_rejects_truncated_file(tmp_path, converted):
    reference, _ = converted
    _write_ctranslate2(reference, tmp_path / "model.bin")
    data = (tmp_path / "model.bin").read_bytes()
    (tmp_path / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.bin"):
        read_ctranslate2(tmp_path / "model.bin")


def test_conversion_reproduces_the_model(converted):
    """The converted model computes what the original computes (up to the float16 storage)."""
    reference, out = converted
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    features = torch.randn(1, 80, 3000)
    decoder_ids = torch.tensor([[1, 5, 9, 14]])
    with torch.no_grad():
        want = reference(input_features=features, decoder_input_ids=decoder_ids).logits
        got = model(input_features=features, decoder_input_ids=decoder_ids).logits
    assert torch.allclose(got, want, atol=2e-2), (got - want).abs().max()
    gen = model.generation_config
    assert gen.decoder_start_token_id == 1 and gen.no_timestamps_token_id == 5 and gen.eos_token_id == 0
    assert gen.suppress_tokens == [9] and gen.begin_suppress_tokens == [7] and gen.is_multilingual is False


def test_whisper_captioner_one_caption_per_clip(converted):
    _, out = converted
    captioner = WhisperCaptioner.from_pretrained(str(out), max_new_tokens=4)
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, 8000).astype(np.float32), np.zeros(4000, np.float32),
             rng.normal(0, 0.1, 16000 * 31).astype(np.float32)]  # fmt: skip
    captions = captioner.caption(clips)
    assert len(captions) == 3
    assert captions[1] == NO_SPEECH  # silence never reaches the model
    assert captions[0].startswith("Speech transcript:") or captions[0] == NO_SPEECH
    # A clip longer than the 30 s window is decoded long-form, not cut or rejected.
    assert isinstance(captions[2], str)
    assert captioner.caption(clips[:1]) == captions[:1]  # deterministic, independent of the batch


def test_transcript_caption_quotes_text():
    assert transcript_caption("  hello   world ") == 'Speech transcript: "hello world"'
    assert transcript_caption("") == NO_SPEECH


def test_unknown_whisper_source_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-whisper"):
        WhisperCaptioner.from_pretrained(str(tmp_path / "no-such-whisper"))

