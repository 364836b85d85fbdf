"""The frozen Whisper encoder: loading, cutting to a shorter window, log-mel features, tapped layers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import WhisperFeatureExtractor, WhisperModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from akb.audio import SAMPLE_RATE
from akb.lalm.config import LAST_TAPS

log = logging.getLogger(__name__)

HOP_LENGTH = 160  # Whisper's mel hop: 100 frames a second
CONV_STRIDE = 2  # the encoder's second convolution halves the frames: 50 positions a second


def window_positions(window_seconds: int) -> int:
    """Encoder positions (output vectors) of one window."""
    return window_seconds * SAMPLE_RATE // HOP_LENGTH // CONV_STRIDE


def load_whisper_encoder(source, window_seconds: int = 30, dtype: torch.dtype | None = None) -> WhisperEncoder:
    """The encoder of a Whisper model, frozen and cut to `window_seconds`.

    `source` is a WhisperModel or WhisperForConditionalGeneration (its encoder is taken, not
    copied), a WhisperEncoder, or a local directory / cached hub id. Cutting and freezing change
    the encoder in place: a Whisper model that shares it and should still transcribe 30 s windows
    must do so before, or be a separate copy."""
    if isinstance(source, (str, Path)):
        source = WhisperModel.from_pretrained(str(source), dtype=dtype)
    encoder = source if isinstance(source, WhisperEncoder) else source.get_encoder()
    if not isinstance(encoder, WhisperEncoder):
        raise TypeError(f"expected a Whisper model or encoder, got {type(source).__name__}")
    cut_window(encoder, window_seconds)
    encoder.requires_grad_(False)
    return encoder.eval()


def cut_window(encoder: WhisperEncoder, window_seconds: int) -> None:
    """Let the encoder take `window_seconds` of audio instead of its trained 30 s.

    Whisper adds a fixed positional embedding per position and checks the input length against it;
    keeping the first positions serves a shorter window (as DeSTA's own code slices them), which
    makes short clips and tests cheap. A longer window than the encoder knows is impossible."""
    positions = window_positions(window_seconds)
    known = encoder.embed_positions.num_embeddings
    if positions > known:
        raise ValueError(f"a {window_seconds} s window needs {positions} encoder positions; "
                         f"this encoder has {known}")
    if positions < known:
        log.info("cutting the Whisper encoder from %d to %d positions (%d s)", known, positions, window_seconds)
        weight = encoder.embed_positions.weight.detach()[:positions].clone()
        encoder.embed_positions = nn.Embedding.from_pretrained(weight, freeze=True)
    encoder.config.max_source_positions = positions  # the length check in WhisperEncoder.forward
    encoder.max_source_positions = positions


def feature_extractor(num_mel_bins: int, window_seconds: int) -> WhisperFeatureExtractor:
    """Whisper's log-mel front end for the window (built from parameters: nothing to download)."""
    return WhisperFeatureExtractor(feature_size=num_mel_bins, chunk_length=window_seconds)


def log_mel(extractor: WhisperFeatureExtractor, clips: Sequence[np.ndarray]) -> torch.Tensor:
    """[clips, mel bins, frames] features of 16 kHz mono clips, each padded with silence to the
    window; a clip longer than the window is truncated to its first `window_seconds` (Whisper sees
    one window; DeSTA2.5 does the same)."""
    clips = [np.asarray(c, dtype=np.float32).reshape(-1) for c in clips]
    features = extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                         padding="max_length", truncation=True)
    return features["input_features"]


def tapped_states(encoder: WhisperEncoder, features: torch.Tensor, taps: Sequence[int],
                  last_tap: str = "post_layer_norm") -> list[torch.Tensor]:
    """Hidden states [clips, positions, d_model] after each tapped 0-based layer.

    hidden_states[0] is the embedding output, so layer i's output is hidden_states[i + 1]; the
    last layer's entry there is taken after Whisper's final LayerNorm (as transformers returns it).
    last_tap="pre_layer_norm" takes the last layer's own output instead, as DeSTA2.5's layer loop
    does (it runs encoder.layers itself and never applies the final norm); the other layers' entries
    are the same either way. The encoder is frozen: no graph is kept."""
    if last_tap not in LAST_TAPS:
        raise ValueError(f"last_tap must be one of {list(LAST_TAPS)}, not {last_tap!r}")
    parameter = next(encoder.parameters())
    last = len(encoder.layers) - 1
    raw: list[torch.Tensor] = []
    hook = None
    if last_tap == "pre_layer_norm" and last in taps:
        # The layer's output as the next layer (or the norm) receives it.
        hook = encoder.layers[last].register_forward_hook(
            lambda _module, _args, output: raw.append(output[0] if isinstance(output, tuple) else output))
    try:
        with torch.no_grad():
            out = encoder(features.to(parameter.device, parameter.dtype), output_hidden_states=True)
    finally:
        if hook is not None:
            hook.remove()
    states = [out.hidden_states[t + 1] for t in taps]
    if raw:
        states[list(taps).index(last)] = raw[-1]
    return states
