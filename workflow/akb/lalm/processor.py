"""Turning (audio, prompt, response, transcript) items into LLM input pieces, for any chat template.

Nothing here knows a model family: the prompt is the backbone's own chat template rendered as text
and split at the audio marker, the end-of-turn text is read off the template, and every piece is
tokenised on its own and concatenated, so each token's role (prompt, audio, transcript, response)
is known by construction rather than found again by re-tokenising the joined text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from akb.lalm.config import TRUNCATIONS, LALMConfig
from akb.lalm.encoder import feature_extractor, log_mel
from akb.models.base import ChatOptions

IGNORE = -100  # label of positions without a loss (prompt, audio, transcript, padding)
_PROBE = "AKB-LALM-RESPONSE"  # a stand-in reply used to read the end-of-turn off the template

Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class LALMItem:
    """One example. `prompt` is the user text (or a whole list of chat messages) where the audio
    marker shows the audio's place; without a marker the audio goes first in the last user turn.
    audio=None means no audio at all: the marker is dropped and no audio vectors are inserted.
    `transcript` (e.g. Whisper's ASR of the clip) follows the audio vectors when the config uses
    transcripts; `response` is the training target (ignored when generating)."""

    audio: np.ndarray | None
    prompt: str | Messages
    response: str | None = None
    transcript: str | None = None


@dataclass(frozen=True)
class Pieces:
    """Token ids of one item's sequence, in order: prefix, audio vectors, transcript, suffix, target."""

    prefix: list[int]
    n_audio: int
    transcript: list[int]
    suffix: list[int]
    target: list[int]  # response + end-of-turn (cut at max_length by `sequence` truncation); empty when generating

    def __len__(self) -> int:
        return len(self.prefix) + self.n_audio + len(self.transcript) + len(self.suffix) + len(self.target)


@dataclass
class LALMBatch:
    """Tensors of one batch. input_ids holds a placeholder id at each audio position (audio_mask),
    which the model overwrites with the connector's vectors; input_features has one row per item
    with audio, in batch order."""

    input_ids: torch.Tensor  # [batch, length]
    attention_mask: torch.Tensor  # [batch, length]
    audio_mask: torch.Tensor  # [batch, length] bool
    input_features: torch.Tensor | None  # [items with audio, mel bins, frames]
    labels: torch.Tensor | None  # [batch, length]; None when generating

    def to(self, device) -> LALMBatch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return LALMBatch(*(move(getattr(self, f)) for f in self.__dataclass_fields__))


class LALMProcessor:
    """Builds batches on the CPU (usable in DataLoader workers): log-mel features and token pieces."""

    def __init__(self, tokenizer, config: LALMConfig, chat: ChatOptions | None = None, num_mel_bins: int = 128):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("an audio LLM's prompt is its backbone's chat template; this tokenizer has none")
        self.tokenizer = tokenizer
        self.config = config
        self.chat = chat or ChatOptions()
        self.features = feature_extractor(num_mel_bins, config.window_seconds)
        # Many causal LMs ship without a pad token; the attention mask makes its value inert.
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # ---- text ----

    def encode(self, text: str) -> list[int]:
        # The chat template writes BOS itself; nothing may be added per piece.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def messages(self, prompt: str | Messages, has_audio: bool) -> list[dict[str, str]]:
        """The conversation to render: the system prompt (if any) first, the marker placed once
        when there is audio and removed when there is none."""
        marker = self.config.audio_marker
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        if self.chat.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.chat.system_prompt})
        count = sum(m["content"].count(marker) for m in messages)
        if count > 1:
            raise ValueError(f"the audio marker {marker!r} appears {count} times; one clip takes one place")
        if not has_audio:
            for m in messages:
                if marker in m["content"]:
                    m["content"] = m["content"].replace(marker, "").strip()
        elif count == 0:
            last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[last_user]["content"] = f"{marker}\n{messages[last_user]['content']}"
        return messages

    def render(self, messages: list[dict[str, str]], **extra) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, **self.chat.template_arguments(), **extra
        )

    def prompt_text(self, prompt: str | Messages, has_audio: bool) -> tuple[str, str]:
        """The rendered prompt (ending where the answer begins), split at the audio marker into
        the text before and after the audio; all of it is `before` when there is no audio."""
        text = self.render(self.messages(prompt, has_audio), add_generation_prompt=True)
        if not has_audio:
            return text, ""
        parts = text.split(self.config.audio_marker)
        if len(parts) != 2:
            raise ValueError(f"the chat template kept {len(parts) - 1} audio markers; expected 1")
        return parts[0], parts[1]

    @cached_property
    def end_of_turn(self) -> str:
        """The text the template writes after an assistant reply, up to and including its first
        special token: "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", or OLMo 2's
        "\\n<|endoftext|>". It is the answer's last target, so the model learns to stop."""
        messages = self.messages("Hello.", has_audio=False)
        prompt = self.render(messages, add_generation_prompt=True)
        full = self.render([*messages, {"role": "assistant", "content": _PROBE}])
        if full.startswith(prompt):
            after = full[len(prompt):]
            if not after.startswith(_PROBE):
                raise ValueError(f"the chat template does not write the reply right after its generation "
                                 f"prompt: {after[:80]!r}")
        else:  # templates that render past turns differently (e.g. Qwen3's empty thinking block)
            after = full[full.rindex(_PROBE):]
        after = after[len(_PROBE):]
        specials = {t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special}
        specials |= set(self.tokenizer.all_special_tokens)
        ends = [after.index(s) + len(s) for s in specials if s and s in after]
        if not ends:
            raise ValueError(f"no special token ends the assistant turn in {after!r}")
        return after[: min(ends)]

    @cached_property
    def end_of_turn_ids(self) -> list[int]:
        return self.encode(self.end_of_turn)

    @cached_property
    def stop_ids(self) -> list[int]:
        """Token ids that end generation: the template's end-of-turn token, and the model's EOS."""
        ids = [self.end_of_turn_ids[-1]]
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return list(dict.fromkeys(ids))

    def pieces(self, item: LALMItem, train: bool, truncation: str | None = None) -> Pieces:
        """Token pieces of one item. A training sequence longer than max_length is cut as
        `truncation` (default: the config's) says: `response` shortens the response and keeps the
        end-of-turn; `sequence` cuts response + end-of-turn at max_length as DeSTA2.5 does, so a cut
        target ends without its end-of-turn. The prompt is never cut."""
        truncation = truncation or self.config.truncation
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {list(TRUNCATIONS)}, not {truncation!r}")
        has_audio = item.audio is not None
        before, after = self.prompt_text(item.prompt, has_audio)
        transcript: list[int] = []
        if has_audio and self.config.use_transcript:
            if item.transcript is None:
                raise ValueError("this LALM reads transcripts after the audio: give each clip one ('' for none)")
            # DeSTA2.5 keeps a transcript's first 100 tokens of the LLM's tokenizer.
            transcript = self.encode(item.transcript)[: self.config.transcript_max_tokens]
        pieces = Pieces(self.encode(before), self.config.queries_per_tap if has_audio else 0,
                        transcript, self.encode(after), [])
        if not train:
            return pieces
        if item.response is None:
            raise ValueError("a training item needs a response")
        room = self.config.max_length - len(pieces)
        if truncation == "response":
            room -= len(self.end_of_turn_ids)
        if room < 0 or (truncation == "sequence" and room == 0):
            raise ValueError(f"the prompt alone takes {len(pieces)} of max_length {self.config.max_length} tokens")
        response = self.encode(item.response)
        target = (response[:room] + self.end_of_turn_ids if truncation == "response"
                  else (response + self.end_of_turn_ids)[:room])
        return Pieces(pieces.prefix, pieces.n_audio, pieces.transcript, pieces.suffix, target)

    # ---- batches ----

    def __call__(self, items: Sequence[LALMItem], train: bool, truncation: str | None = None) -> LALMBatch:
        """A batch: right-padded with labels for training, left-padded (new tokens must follow the
        last real one) without labels for generation. `truncation`: as in `pieces`."""
        if not items:
            raise ValueError("an empty batch")
        rows = [self.pieces(item, train, truncation) for item in items]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        audio = torch.zeros_like(ids, dtype=torch.bool)
        labels = torch.full_like(ids, IGNORE)
        for i, p in enumerate(rows):
            start = 0 if train else width - len(p)
            tokens = [*p.prefix, *[self.pad_id] * p.n_audio, *p.transcript, *p.suffix, *p.target]
            ids[i, start : start + len(p)] = torch.tensor(tokens, dtype=torch.long)
            mask[i, start : start + len(p)] = 1
            audio_start = start + len(p.prefix)
            audio[i, audio_start : audio_start + p.n_audio] = True
            if p.target:
                labels[i, start + len(p) - len(p.target) : start + len(p)] = torch.tensor(p.target)
        clips = [item.audio for item in items if item.audio is not None]
        return LALMBatch(
            input_ids=ids,
            attention_mask=mask,
            audio_mask=audio,
            input_features=log_mel(self.features, clips) if clips else None,
            labels=labels if train else None,
        )
