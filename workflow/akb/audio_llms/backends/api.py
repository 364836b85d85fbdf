"""An audio model behind an OpenAI-compatible /chat/completions endpoint (Gemini, GPT-4o audio).

Each request is one user message, the prompt then the clip as a base64 16 kHz mono WAV
(`input_audio`), built by the `api` captioner's `audio_request`; without a clip (the `none`
condition) the message holds the prompt alone. Requests go through akb.models.api.ChatClient: its
answer cache (a rerun sends nothing), retries, concurrency bound and key handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from akb.audio_llms import AudioLLM, register
from akb.captioners.api import WAV_RATE, audio_request
from akb.models.api import CACHE_ROOT, APISettings, ChatClient

AUDIO_LLM_CACHE_ROOT = CACHE_ROOT / "audio_llms"  # apart from text models' and captioners' caches


@register("api")
class APIAudioLLM(AudioLLM):
    sample_rate = WAV_RATE

    def __init__(self, name: str, source: str, settings: APISettings, cache_dir: str | Path | None = None):
        super().__init__(name)
        self.source = source
        cache = cache_dir or settings.cache_dir or AUDIO_LLM_CACHE_ROOT / name
        # An empty reply is an answer (scored wrong), as for the text `api` backend.
        self.client = ChatClient("audio LLM", name, settings, Path(cache), warn_truncated=True)

    @classmethod
    def from_entry(cls, entry: dict) -> APIAudioLLM:
        name = entry["name"]
        if not entry.get("source"):
            raise ValueError(f"audio LLM {name}: backend 'api' needs `source`, the API model id (e.g. gemini-2.5-pro)")
        return cls(name, entry["source"], APISettings.from_block(entry.get("api"), f"audio LLM {name}"))

    def generate(self, clips: list[np.ndarray | None], prompts: list[str], max_new_tokens: int) -> list[str]:
        self.check_batch(clips, prompts, max_new_tokens)
        requests = [audio_request(self.client, self.source, prompt, clip, max_new_tokens,
                                  f"request #{i + 1} of the batch", self.sample_rate)
                    for i, (clip, prompt) in enumerate(zip(clips, prompts))]
        return [text.strip() for text in self.client.answer(requests)]
