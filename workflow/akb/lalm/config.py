"""The recipe of a DeSTA2.5-style audio LLM as one JSON round-trippable record.

Every choice the DeSTA code hard-coded (taps keyed on the encoder's model id, Llama's LoRA targets,
the Q-Former size) is a field here, so a per-backbone recipe is a config entry, and a checkpoint
carries the exact recipe that produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# Names of the attention input projections LoRA adapts by default: separate q/k/v in most
# families, one fused projection in Phi-3.
LORA_TARGET_NAMES = ("q_proj", "k_proj", "v_proj", "qkv_proj")

# Where the last encoder layer is tapped: after Whisper's final LayerNorm (what transformers returns
# as the last hidden state) or before it (DeSTA2.5's own layer loop never applies that norm).
LAST_TAPS = ("post_layer_norm", "pre_layer_norm")
# How a training sequence longer than max_length is cut: `response` shortens the response so the
# end-of-turn always fits; `sequence` cuts the whole sequence (response + end-of-turn) at
# max_length, as DeSTA2.5's tokenizer truncation does, so a cut target has no end-of-turn.
TRUNCATIONS = ("response", "sequence")


def default_taps(n_layers: int, n_taps: int) -> list[int]:
    """Evenly spaced 0-based encoder layers ending at the last one (32 layers, 4 taps: 7, 15, 23, 31,
    the layers DeSTA2.5 taps in Whisper-large-v3)."""
    if not 1 <= n_taps <= n_layers:
        raise ValueError(f"cannot tap {n_taps} of {n_layers} encoder layers")
    return [n_layers * (i + 1) // n_taps - 1 for i in range(n_taps)]


@dataclass(frozen=True)
class LoRASettings:
    """LoRA on the backbone's attention projections (DeSTA2.5: r 16, alpha 16, dropout 0.1 on q/k/v)."""

    r: int = 16
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None  # None: the backbone's q/k/v (or fused qkv) projections

    def __post_init__(self):
        if self.target_modules is not None:  # JSON gives lists; a tuple keeps the record hashable
            object.__setattr__(self, "target_modules", tuple(self.target_modules))


@dataclass(frozen=True)
class LALMConfig:
    """Connector, prompt and LoRA settings; encoder and backbone are supplied separately.

    Fields left None are filled from the encoder and backbone by `resolve`, and the model keeps the
    resolved record, so a saved checkpoint states every value it was trained with."""

    taps: tuple[int, ...] | None = None  # 0-based encoder layers; None: default_taps(layers, n_taps)
    n_taps: int = 4
    qformer_layers: int = 6
    queries_per_tap: int = 64  # also the audio vectors per clip: taps are fused, not concatenated
    qformer_hidden_size: int | None = None  # None: the encoder width (as in DeSTA2.5)
    qformer_heads: int | None = None  # None: the encoder's attention heads
    qformer_intermediate_size: int = 3072  # BERT's default, which DeSTA2.5 kept
    qformer_dropout: float = 0.1
    use_transcript: bool = True  # put the clip's transcript right after its audio vectors
    transcript_max_tokens: int | None = None  # keep a transcript's first N LLM tokens (DeSTA2.5: 100); None: all
    last_tap: str = "post_layer_norm"  # one of LAST_TAPS; DeSTA2.5: pre_layer_norm
    truncation: str = "response"  # one of TRUNCATIONS; DeSTA2.5: sequence
    lora: LoRASettings | None = None
    max_length: int = 300  # training sequence length in tokens (audio vectors count as tokens)
    audio_marker: str = "<|audio|>"  # where the audio goes in the user message; never tokenised
    window_seconds: int = 30  # encoder window; longer clips are truncated to it
    extra: dict[str, Any] = field(default_factory=dict)  # free notes (sources, recipe name); not used

    def __post_init__(self):
        if self.taps is not None:
            object.__setattr__(self, "taps", tuple(int(t) for t in self.taps))
        if isinstance(self.lora, dict):
            object.__setattr__(self, "lora", LoRASettings(**self.lora))
        if not self.audio_marker:
            raise ValueError("audio_marker must be a non-empty string")
        if self.queries_per_tap < 1 or self.qformer_layers < 1:
            raise ValueError("queries_per_tap and qformer_layers must be at least 1")
        if self.last_tap not in LAST_TAPS:
            raise ValueError(f"last_tap must be one of {list(LAST_TAPS)}, not {self.last_tap!r}")
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {list(TRUNCATIONS)}, not {self.truncation!r}")
        if self.transcript_max_tokens is not None and self.transcript_max_tokens < 0:
            raise ValueError(f"transcript_max_tokens must be at least 0 or None, not {self.transcript_max_tokens}")

    def resolve(self, encoder_config, llm) -> LALMConfig:
        """This config with every None filled from the Whisper encoder config and the backbone LLM,
        and checked against them."""
        n_layers = encoder_config.encoder_layers
        taps = self.taps if self.taps is not None else tuple(default_taps(n_layers, self.n_taps))
        if list(taps) != sorted(set(taps)) or not all(0 <= t < n_layers for t in taps):
            raise ValueError(f"taps {list(taps)} must be distinct, increasing layers of 0..{n_layers - 1}")
        lora = self.lora
        if lora is not None and lora.target_modules is None:
            lora = replace(lora, target_modules=tuple(lora_target_names(llm)))
        return replace(
            self,
            taps=taps,
            n_taps=len(taps),
            qformer_hidden_size=self.qformer_hidden_size or encoder_config.d_model,
            qformer_heads=self.qformer_heads or encoder_config.encoder_attention_heads,
            lora=lora,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["taps"] = None if self.taps is None else list(self.taps)
        if self.lora is not None and self.lora.target_modules is not None:
            data["lora"]["target_modules"] = list(self.lora.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LALMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LALM config keys: {unknown}")
        return cls(**data)


def lora_target_names(llm) -> list[str]:
    """The backbone's attention input projections by module name (q_proj/k_proj/v_proj, or Phi-3's
    fused qkv_proj), so no family needs its own list."""
    import torch.nn as nn

    names = {
        name.rsplit(".", 1)[-1]
        for name, module in llm.named_modules()
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in LORA_TARGET_NAMES
    }
    if not names:
        raise ValueError(f"no attention projections named {LORA_TARGET_NAMES} in {type(llm).__name__}; "
                         "set lora.target_modules")
    return sorted(names)
