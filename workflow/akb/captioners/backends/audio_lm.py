"""The `audio-lm` captioner: an audio LLM from transformers asked to describe each clip
(akb.captioners.audio_lm)."""

from __future__ import annotations

from akb.captioners import Captioner, register


@register("audio-lm")
def audio_lm_captioner(entry: dict) -> Captioner:
    from akb.captioners.audio_lm import AudioLMCaptioner

    # prompt None: the model type's default (Qwen3-Omni's Captioner takes the clip alone).
    return AudioLMCaptioner.from_pretrained(
        entry["source"], prompt=entry.get("prompt"),
        max_new_tokens=entry.get("max_new_tokens", 128), dtype=entry.get("dtype", "auto"),
        device=entry.get("device", "auto"),
    )  # fmt: skip
