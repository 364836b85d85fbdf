"""The `tiny` backend: a small random model of a named architecture, built offline (akb.models.tiny)."""

from __future__ import annotations

from pathlib import Path

from akb.models import register
from akb.models.base import LanguageModel, ModelSpec


@register("tiny")
def load_tiny(spec: ModelSpec, packaged_root: Path, generation_only: bool) -> LanguageModel:
    from akb.models.hf import HFCausalLM, pick_device
    from akb.models.tiny import build_tiny_model

    model, tokenizer = build_tiny_model(spec.source, spec.seed)
    return HFCausalLM(spec, model, tokenizer, pick_device(spec.device))
