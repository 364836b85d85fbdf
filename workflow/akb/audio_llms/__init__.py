"""Published audio LLMs as evaluation backends: one interface, "clips + prompts -> texts".

`AudioLLM.generate(clips, prompts, max_new_tokens)` answers one batch greedily: clip i (a mono
float array at `sample_rate`, or None for no audio at all: the prompt then carries no audio
placeholder) goes with prompt i. Backends register under the config's `audio_llms[].backend` name
with `@register("name")`; each lives in one module of akb/audio_llms/backends/, all of which are
imported when a backend is first looked up, so adding a backend is adding one file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from akb.registry import Registry

AUDIO_LLM_BACKENDS: Registry[type[AudioLLM]] = Registry("audio LLM", "backend", "akb.audio_llms.backends")


class AudioLLM(ABC):
    """An audio LLM answering text prompts about clips."""

    backend: str  # the registry name, set by `register`
    sample_rate: int = 16_000  # the rate `generate` takes clips at

    def __init__(self, name: str):
        self.name = name  # the config entry's name, used in messages

    @classmethod
    @abstractmethod
    def from_entry(cls, entry: dict) -> AudioLLM:
        """Build from an `audio_llms` config entry (defaults from the schema)."""

    @abstractmethod
    def generate(self, clips: list[np.ndarray | None], prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy replies, one per (clip, prompt) pair, in input order, without the prompt."""

    def check_batch(self, clips: list, prompts: list[str], max_new_tokens: int) -> None:
        if len(clips) != len(prompts):
            raise ValueError(f"audio LLM {self.name}: {len(clips)} clips for {len(prompts)} prompts")
        if max_new_tokens < 1:
            raise ValueError(f"audio LLM {self.name}: max_new_tokens must be >= 1, got {max_new_tokens}")


def register(backend: str):
    """Class decorator: make `cls` the audio LLM backend called `backend` in configs."""

    def decorate(cls: type[AudioLLM]) -> type[AudioLLM]:
        AUDIO_LLM_BACKENDS.add(backend, cls)
        cls.backend = backend
        return cls

    return decorate


def backend_names() -> list[str]:
    return AUDIO_LLM_BACKENDS.names()


def load_audio_llm(entry: dict) -> AudioLLM:
    """The backend of an `audio_llms` config entry, loaded."""
    backend = AUDIO_LLM_BACKENDS.get(entry.get("backend"), f"audio LLM {entry.get('name', '?')}")
    return backend.from_entry(entry)


__all__ = ["AUDIO_LLM_BACKENDS", "AudioLLM", "backend_names", "load_audio_llm", "register"]
