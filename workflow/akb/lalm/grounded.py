"""A trained audio LLM behind the text-model interface, so probing code evaluates it unchanged.

`probe()` asks a model for `item_prompt(item, text)`, then for generations or option
log-likelihoods of those prompts. Here the prompt is an `AudioPrompt`: the user text (a str, so it is
written to the results like any prompt) that also remembers its item, whose clip (or no clip, or a
fragment: see akb.diagnostics.analysis) the model looks up when it runs. The same predictions format, answer
extraction and official scoring then apply to the cascade and to audio-grounded evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from akb.lalm.config import LALMConfig
from akb.lalm.model import LALM, read_config
from akb.lalm.processor import IGNORE, LALMItem
from akb.models.base import Continuation, LanguageModel, ModelSpec

log = logging.getLogger(__name__)


class AudioPrompt(str):
    """User text that knows which item (and so which clip) it belongs to."""

    item_id: str

    def __new__(cls, text: str, item_id: str) -> AudioPrompt:
        prompt = super().__new__(cls, text)
        prompt.item_id = item_id
        return prompt


@dataclass(frozen=True)
class Clip:
    audio: np.ndarray | None  # None: the prompt goes without any audio (the `none` condition)
    transcript: str | None = None


class GroundedLM(LanguageModel):
    """`LanguageModel` view of an LALM over a fixed set of clips keyed by item id."""

    def __init__(self, spec: ModelSpec, lalm: LALM, clips: dict[str, Clip]):
        self.spec = spec
        self.lalm = lalm.eval()
        self.clips = clips

    def prompt(self, user_text: str) -> str:
        raise TypeError("an audio LLM's prompt needs its item: use item_prompt(item, text)")

    def item_prompt(self, item, user_text: str) -> AudioPrompt:
        if item.id not in self.clips:
            raise KeyError(f"no clip loaded for item {item.id}")
        return AudioPrompt(user_text, item.id)

    def continuation(self, text: str) -> str:
        return text  # the reply follows the chat template's generation prompt directly

    def _item(self, prompt: AudioPrompt, response: str | None = None) -> LALMItem:
        clip = self.clips[prompt.item_id]
        return LALMItem(audio=clip.audio, prompt=str(prompt), response=response, transcript=clip.transcript)

    def token_length(self, text: str) -> int:
        if not isinstance(text, AudioPrompt):  # an answer option
            return len(self.lalm.processor.encode(text))
        return len(self.lalm.processor.pieces(self._item(text), train=False))

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        return self.lalm.generate([self._item(p) for p in prompts], max_new_tokens)

    @torch.inference_mode()
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        """Sum of log-probabilities of each continuation's tokens after its prompt (the end-of-turn
        that training appends is not counted, as a text model's continuation has none)."""
        items = [self._item(context, continuation) for context, continuation in requests]
        # `response` truncation whatever the recipe trained with: every row keeps its end-of-turn,
        # so the n_end positions dropped below are always the end-of-turn's.
        batch = self.lalm.processor(items, train=True, truncation="response").to(self.lalm.device)
        # The options of one item share its clip: encode each clip once, not once per option.
        with_audio = [context.item_id for context, _ in requests if self.clips[context.item_id].audio is not None]
        audio = None
        if with_audio:
            clips = list(dict.fromkeys(with_audio))
            first = [with_audio.index(c) for c in clips]
            vectors = self.lalm.audio_vectors(batch.input_features[first])
            audio = vectors[[clips.index(c) for c in with_audio]]
        embeds = self.lalm.embed(batch, audio)
        logits = self.lalm.llm(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
        labels = batch.labels[:, 1:].to(logits.device)  # a sharded backbone returns logits from its last device
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        targets = logprobs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        n_end = len(self.lalm.processor.end_of_turn_ids)
        results = []
        for row, (_, continuation) in enumerate(requests):
            positions = (labels[row] != IGNORE).nonzero()[:, 0]
            positions = positions[: len(positions) - n_end]
            results.append(Continuation(float(targets[row, positions].sum()), len(positions),
                                        len(continuation.encode("utf-8"))))
        return results


def lalm_config(settings: dict) -> LALMConfig:
    """The recipe from the config's `grounded.connector` block (plus transcript, LoRA, lengths).
    Settings the schema gives no default (transcript_max_tokens, train.truncation, connector.last_tap)
    keep LALMConfig's own defaults when absent, the behaviour from before they existed."""
    connector = dict(settings["connector"])
    optional = {"transcript_max_tokens": settings.get("transcript_max_tokens"),
                "truncation": settings["train"].get("truncation")}
    return LALMConfig(
        taps=connector.pop("taps", None),
        use_transcript=settings["use_transcript"],
        lora=settings["lora"],
        max_length=settings["train"]["max_length"],
        window_seconds=settings["encoder"]["window_seconds"],
        **{k: v for k, v in optional.items() if v is not None},
        **connector,
    )


def load_backbone(spec: ModelSpec, packaged_root: Path):
    """(causal LM, tokenizer) of a configured text model, via the same loader the probe uses."""
    from akb.models import load_model
    from akb.models.hf import HFCausalLM

    model = load_model(spec, packaged_root)
    if not isinstance(model, HFCausalLM):
        raise ValueError(f"model {spec.name}: an audio LLM needs a local backbone (hf, tiny or packaged), "
                         f"not backend {spec.backend!r}")
    return model.model, model.tokenizer, model.device


def load_whisper(source: str):
    from transformers import WhisperForConditionalGeneration

    from akb.models.hf import check_model_folder

    check_model_folder(source, "audio encoder")
    try:
        return WhisperForConditionalGeneration.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"audio encoder: cannot load Whisper {source!r}: {e}") from e


def transcribe(source: str, clips: Sequence[np.ndarray | None], batch_size: int = 16) -> list[str | None]:
    """Whisper ASR transcripts (DeSTA puts them after the audio vectors), None where there is no clip.
    Run with its own copy of the model: the audio LLM cuts its encoder's window in place."""
    from akb.captioners.whisper import WhisperCaptioner

    asr = WhisperCaptioner.from_pretrained(source)
    texts: list[str | None] = [None] * len(clips)
    todo = [i for i, clip in enumerate(clips) if clip is not None]
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        for i, text in zip(batch, asr.transcribe([clips[i] for i in batch])):
            texts[i] = text
    return texts


def build_lalm(spec: ModelSpec, settings: dict, packaged_root: Path, checkpoint: Path | None = None) -> LALM:
    """A fresh audio LLM on a configured backbone, or the one a checkpoint directory holds."""
    llm, tokenizer, device = load_backbone(spec, packaged_root)
    whisper = load_whisper(settings["encoder"]["source"]).to(device)
    config = read_config(checkpoint) if checkpoint is not None else lalm_config(settings)
    model = LALM(config, whisper, llm, tokenizer, spec.chat)
    if checkpoint is not None:
        model.load_trainable(checkpoint)
    return model
