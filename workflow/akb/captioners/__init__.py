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


CAPTIONER_BACKENDS = ("dsp",)


def load_captioner(entry: dict) -> Captioner:
    """The captioner a config entry declares ({name, backend, ...})."""
    if entry["backend"] == "dsp":
        from akb.captioners.dsp import DspCaptioner

        captioner = DspCaptioner()
    else:
        raise ValueError(f"captioner {entry['name']}: unknown backend {entry['backend']!r}; one of {CAPTIONER_BACKENDS}")
    captioner.name = entry["name"]
    return captioner


__all__ = ["CAPTIONER_BACKENDS", "Captioner", "load_captioner"]
