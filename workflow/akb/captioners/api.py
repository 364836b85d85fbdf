"""The `api` captioner: an audio model behind an OpenAI-compatible /chat/completions endpoint
(Gemini, OpenAI's audio models) describes each clip.

Each clip goes as one user message: the caption prompt (a versioned text file shipped in
workflow/data/caption/prompts/, or the entry's own file) followed by the clip as a base64 16 kHz
mono 16-bit PCM WAV (`input_audio`). 16 kHz mono is what Gemini reduces every clip to anyway, and it
keeps requests small (about 43 kB of base64 per second).

Requests go through akb.models.api.ChatClient, so they share the `api` LLM backend's answer cache
(one file per request, named by a hash of it: a rerun sends nothing), retries, concurrency bound and
key handling. The hash covers the prompt and the WAV's SHA-256 rather than its base64, so a changed
clip is asked again while the cache files hold no audio.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from akb import DATA_DIR
from akb.captioners import Captioner
from akb.models.api import CACHE_ROOT, APISettings, ChatClient, ChatRequest

PROMPT_DIR = DATA_DIR / "caption" / "prompts"
DEFAULT_PROMPT_VERSION = "v1"
CAPTION_CACHE_ROOT = CACHE_ROOT / "captions"  # apart from the text models' resources/api_cache/<model>
WAV_RATE = 16_000
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CaptionPrompt:
    text: str
    origin: str  # "version v1", "file <path>" or "config" (an inline `prompt`)
    path: Path | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def caption_prompt_path(entry: dict) -> Path | None:
    """The prompt file an `api` captioner entry reads (None for an inline `prompt`); the workflow
    makes it an input of the caption job, so editing it re-captions."""
    name = entry.get("name", "?")
    given = [k for k in ("prompt", "prompt_version", "prompt_file") if entry.get(k) is not None]
    if len(given) > 1:
        raise ValueError(f"captioner {name}: give one of prompt_version, prompt_file and prompt, not {given}")
    if entry.get("prompt") is not None:
        return None
    if entry.get("prompt_file") is not None:
        return Path(entry["prompt_file"])
    version = str(entry.get("prompt_version") or DEFAULT_PROMPT_VERSION)
    if not VERSION_NAME.match(version):
        raise ValueError(f"captioner {name}: prompt_version {version!r} is not a version name such as v1 "
                         "(use prompt_file for a path)")
    return PROMPT_DIR / f"{version}.txt"


def load_caption_prompt(entry: dict) -> CaptionPrompt:
    """The caption request of an `api` captioner entry: `prompt_file`, `prompt_version` (a file
    shipped in workflow/data/caption/prompts/, default v1) or an inline `prompt`."""
    name = entry.get("name", "?")
    path = caption_prompt_path(entry)
    if path is None:
        text, origin = str(entry["prompt"]), "config"
    else:
        if not path.is_file():
            if entry.get("prompt_file") is not None:
                raise FileNotFoundError(f"captioner {name}: prompt_file {path} does not exist")
            shipped = sorted(p.stem for p in PROMPT_DIR.glob("*.txt"))
            raise FileNotFoundError(f"captioner {name}: no shipped caption prompt {path.stem!r} ({path}); "
                                    f"shipped versions: {shipped}; or give prompt_file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: caption prompt of captioner {name} is not UTF-8 text ({e})") from None
        origin = f"file {path}" if entry.get("prompt_file") is not None else f"version {path.stem}"
    text = text.strip()
    if not text:
        raise ValueError(f"captioner {name}: the caption prompt ({origin}) is empty")
    return CaptionPrompt(text, origin, path)


def encode_wav(audio: np.ndarray, sample_rate: int = WAV_RATE) -> bytes:
    """The clip as a 16-bit PCM mono WAV file, in memory. Samples beyond [-1, 1] (resampling can
    overshoot) are clipped here: older libsndfile builds wrap them around."""
    import soundfile

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected a mono clip (1-D array), got shape {audio.shape}")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def audio_request(client: ChatClient, source: str, text: str, audio: np.ndarray | None, max_new_tokens: int,
                  what: str, sample_rate: int = WAV_RATE) -> ChatRequest:
    """One user message: `text`, then the clip as a base64 WAV (`input_audio`); no audio part at all
    when `audio` is None. `what` names the request in errors. The cache key and record hold the WAV's
    SHA-256 in place of its base64: the same request, minus the audio, so a changed clip is asked again."""
    def body(audio_data: str | None) -> dict[str, Any]:
        content = [{"type": "text", "text": text}]
        if audio_data is not None:
            content.append({"type": "input_audio", "input_audio": {"data": audio_data, "format": "wav"}})
        return client.body(source, [{"role": "user", "content": content}], max_new_tokens)

    if audio is None:
        payload = record = body(None)
    else:
        wav = encode_wav(audio, sample_rate)
        payload = body(base64.b64encode(wav).decode("ascii"))
        record = body(f"sha256:{hashlib.sha256(wav).hexdigest()} ({len(wav)} bytes of WAV, not stored)")
    key = client.key(record)
    return ChatRequest(payload, key, f"{what} (request {key[:12]})", record)


class APICaptioner(Captioner):
    sample_rate = WAV_RATE

    def __init__(self, name: str, source: str, settings: APISettings, prompt: CaptionPrompt,
                 max_new_tokens: int = 1024, cache_dir: str | Path | None = None):
        if max_new_tokens < 1:
            raise ValueError(f"captioner {name}: max_new_tokens must be >= 1, got {max_new_tokens}")
        self.name = name
        self.source = source
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        cache = cache_dir or settings.cache_dir or CAPTION_CACHE_ROOT / name
        # No caption is no answer: an empty reply is retried like a malformed one, then an error.
        self.client = ChatClient("captioner", name, settings, Path(cache), allow_empty=False, warn_truncated=True)

    @classmethod
    def from_entry(cls, entry: dict) -> APICaptioner:
        """From a config entry: {name, backend: api, source, api: {...}, max_new_tokens,
        prompt_version | prompt_file | prompt} (defaults from the config schema)."""
        name = entry["name"]
        if not entry.get("source"):
            raise ValueError(f"captioner {name}: backend 'api' needs `source`, the API model id "
                             "(e.g. gemini-2.5-pro)")
        settings = APISettings.from_block(entry.get("api"), f"captioner {name}")
        return cls(name, entry["source"], settings, load_caption_prompt(entry),
                   max_new_tokens=entry.get("max_new_tokens") or 1024)

    def request(self, audio: np.ndarray, clip: str) -> ChatRequest:
        """The request for one clip; `clip` names it in errors."""
        return audio_request(self.client, self.source, self.prompt.text, audio, self.max_new_tokens, f"clip {clip}",
                             self.sample_rate)

    def caption(self, audios: list[np.ndarray]) -> list[str]:
        return self.caption_named(audios, [f"#{i + 1} of the batch" for i in range(len(audios))])

    def caption_named(self, audios: list[np.ndarray], names: list[str]) -> list[str]:
        return self.client.answer([self.request(audio, name) for audio, name in zip(audios, names, strict=True)])

    @property
    def stats(self) -> dict[str, int]:
        return self.client.stats
