"""The `whisper` captioner: a Whisper ASR model's transcript (akb.captioners.whisper)."""

from __future__ import annotations

from akb.captioners import Captioner, register


@register("whisper")
def whisper_captioner(entry: dict) -> Captioner:
    from akb.captioners.whisper import WhisperCaptioner

    return WhisperCaptioner.from_pretrained(
        entry["source"], device=entry.get("device", "auto"), dtype=entry.get("dtype", "auto"),
        max_new_tokens=entry.get("max_new_tokens", 128), language=entry.get("language"),
    )  # fmt: skip
