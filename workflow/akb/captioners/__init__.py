"""Audio captioners for the cascade evaluation: each turns clips into English text that a text-only
LLM then reads in place of the audio (REFERENCE.md section 1).

Each backend is a factory registered with `@register("name")` in a module of
akb/captioners/backends/, which imports its implementation (`akb.captioners.dsp`, ...) only when
called, so that importing this package and looking up a name stay cheap (librosa, torch and the like
load only with the captioner that needs them)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from akb.audio import SAMPLE_RATE
from akb.registry import Registry


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


# Backend name -> factory(entry) -> Captioner; one module each in akb/captioners/backends/,
# registered with `@register("name")`.
CAPTIONER_BACKENDS = Registry("captioner", "backend", "akb.captioners.backends")
register = CAPTIONER_BACKENDS.register


def load_captioner(entry: dict) -> Captioner:
    """The captioner a config entry declares ({name, backend, ...}; defaults from the config schema)."""
    build = CAPTIONER_BACKENDS.get(entry["backend"], f"captioner {entry['name']}")
    captioner = build(entry)
    captioner.name = entry["name"]
    return captioner


__all__ = ["CAPTIONER_BACKENDS", "Captioner", "load_captioner", "register"]
