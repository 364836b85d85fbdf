"""Audio captioners for the cascade evaluation: each turns clips into English text that a text-only
LLM then reads in place of the audio (REFERENCE.md section 1).

Implementations live in submodules (`akb.captioners.dsp`, ...) and are imported where used, so that
importing this package stays cheap (librosa, torch and the like load only with the captioner that
needs them)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from akb.audio import SAMPLE_RATE


class Captioner(ABC):
    """One caption per clip, in input order. Clips are 1-D float arrays at `sample_rate`
    (what `akb.audio.load_audio` returns). A batch is a list rather than a padded array because
    clips differ in length; model-based captioners are free to pad internally."""

    name: str = ""  # path-safe; used in result paths and reports
    sample_rate: int = SAMPLE_RATE

    @abstractmethod
    def caption(self, audios: list[np.ndarray]) -> list[str]:
        """Describe each clip; the returned list has one string per input clip."""

    def caption_named(self, audios: list[np.ndarray], names: list[str]) -> list[str]:
        """`caption` for clips that have names (path and items, from `caption_items`); a captioner
        whose failures concern one clip (an API request) names it in its errors."""
        return self.caption(audios)


CAPTIONER_BACKENDS = ("dsp", "whisper", "audio-lm", "file", "api")


def load_captioner(entry: dict) -> Captioner:
    """The captioner a config entry declares ({name, backend, ...}; defaults from the config schema)."""
    if entry["backend"] == "dsp":
        from akb.captioners.dsp import DspCaptioner

        captioner = DspCaptioner()
    elif entry["backend"] == "whisper":
        from akb.captioners.whisper import WhisperCaptioner

        captioner = WhisperCaptioner.from_pretrained(
            entry["source"], device=entry.get("device", "auto"), dtype=entry.get("dtype", "auto"),
            max_new_tokens=entry.get("max_new_tokens", 128), language=entry.get("language"),
        )  # fmt: skip
    elif entry["backend"] == "audio-lm":
        from akb.captioners.audio_lm import AudioLMCaptioner

        # prompt None: the model type's default (Qwen3-Omni's Captioner takes the clip alone).
        captioner = AudioLMCaptioner.from_pretrained(
            entry["source"], prompt=entry.get("prompt"),
            max_new_tokens=entry.get("max_new_tokens", 128), dtype=entry.get("dtype", "auto"),
            device=entry.get("device", "auto"),
        )  # fmt: skip
    elif entry["backend"] == "file":
        from akb.captioners.file import FileCaptioner

        captioner = FileCaptioner(entry["path"])
    elif entry["backend"] == "api":
        from akb.captioners.api import APICaptioner

        captioner = APICaptioner.from_entry(entry)
    else:
        raise ValueError(f"captioner {entry['name']}: unknown backend {entry['backend']!r}; one of {CAPTIONER_BACKENDS}")
    captioner.name = entry["name"]
    return captioner


__all__ = ["CAPTIONER_BACKENDS", "Captioner", "load_captioner"]
