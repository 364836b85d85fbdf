"""The `audio-lm` captioner: an audio LLM from transformers, asked to describe each clip.

Supported checkpoints, by the `model_type` of their config:

  * `qwen2_audio`: Qwen2-Audio (Qwen2AudioForConditionalGeneration), e.g.
    Qwen/Qwen2-Audio-7B-Instruct;
  * `qwen2_5_omni`: a full Qwen2.5-Omni checkpoint, of which only the thinker (the part that writes
    text) is loaded: the talker and token2wav that speak are never built;
  * `qwen2_5_omni_thinker`: a thinker saved on its own;
  * `qwen3_omni_moe`: a Qwen3-Omni checkpoint (Qwen3OmniMoeForConditionalGeneration), of which only
    the thinker is loaded (no talker, no code2wav). The AKB paper's "Omni" captioner,
    Qwen/Qwen3-Omni-30B-A3B-Captioner, is one: a fine-tuned Qwen3-Omni-30B-A3B-Instruct whose model
    card says it takes one audio clip and no text at all, so for this family the default request is
    the clip alone (an explicit `prompt` is still sent, for the Instruct and Thinking checkpoints);
  * `qwen3_omni_moe_thinker`: a Qwen3-Omni thinker saved on its own.

Each clip goes through the checkpoint's own processor and chat template: one user turn holding the
clip and the prompt (or the clip alone), nothing hard-coded about the model's special tokens.
Generation is greedy (the Captioner's card samples; greedy keeps captions reproducible); within a
call clips are sorted by length (longest first, so a batch that runs out of memory does so at once)
and generated in sub-batches of `batch_size`, with left padding; captions come back in input order.

A clip is heard up to the feature extractor's window (`n_samples`: 30 s for Qwen2-Audio, 300 s for
the Omni checkpoints): longer clips are cut to it here, whatever the processor version would do,
with a warning naming how many were cut.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from akb.audio_llms.tiny import tiny_qwen2_audio  # re-exported: tests and demos build it from here
from akb.audio_llms.transformers_lm import (
    check_clip,
    check_local,
    cut_to_window,
    eos_token_ids,
    greedy_config,
    load_processor,
    load_qwen_audio_model,
    model_type_of,
    to_model,
)
from akb.captioners import Captioner

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "Qwen/Qwen2-Audio-7B-Instruct"
DEFAULT_PROMPT = (
    "Describe this audio clip in detail for someone who cannot hear it. Name every sound source and "
    "event in the order they occur; for speech, give what is said and describe the speakers' voices, "
    "emotion and intonation; for music, describe the instruments, genre, tempo, key, mood and any "
    "singing; and describe the acoustic environment and recording quality."
)
DEFAULT_MAX_NEW_TOKENS = 256
SUPPORTED_MODEL_TYPES = (
    "qwen2_audio", "qwen2_5_omni", "qwen2_5_omni_thinker", "qwen3_omni_moe", "qwen3_omni_moe_thinker",
)
# Families whose default request is the clip alone: Qwen3-Omni-30B-A3B-Captioner takes no text.
AUDIO_ONLY_MODEL_TYPES = ("qwen3_omni_moe", "qwen3_omni_moe_thinker")


def default_prompt(model_type: str) -> str | None:
    """The request sent with each clip when the config names none: None (the clip alone) for the
    Qwen3-Omni family, a request for a detailed description otherwise."""
    return None if model_type in AUDIO_ONLY_MODEL_TYPES else DEFAULT_PROMPT


class AudioLMCaptioner(Captioner):
    """Captions from an audio LLM (a transformers model and its processor).

    `caption` takes clips at `self.sample_rate`, the processor's feature-extractor rate (16 kHz for
    the supported families): `akb.cascade.caption.caption_items` loads (and resamples) them at that rate.
    `prompt` None is the model type's default (`default_prompt`); a prompt given must hold text."""

    name = "audio-lm"

    def __init__(
        self,
        model,
        processor,
        prompt: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        device: torch.device | str | None = None,
        batch_size: int | None = None,
    ):
        if prompt is None:
            prompt = default_prompt(getattr(model.config, "model_type", ""))
            if prompt is None:
                log.info("audio-lm captioner: each clip is sent alone, with no text (the model type's default)")
        elif not prompt.strip():
            raise ValueError("audio-lm captioner: the prompt is empty (leave it out for the model's default)")
        if max_new_tokens < 1:
            raise ValueError(f"audio-lm captioner: max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"audio-lm captioner: batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size  # clips per generate call; None: the whole call at once
        extractor = processor.feature_extractor
        self.sample_rate = int(extractor.sampling_rate)
        self.max_samples = getattr(extractor, "n_samples", None)  # the extractor's window
        tokenizer = processor.tokenizer
        self.eos_token_ids = eos_token_ids(model, tokenizer, "audio-lm captioner")
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.eos_token_ids[0]
        self.text = self._prompt_text()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path = DEFAULT_SOURCE,
        prompt: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int | None = None,
        revision: str | None = None,
    ) -> AudioLMCaptioner:
        """Load a hub id or a local directory (model, processor, chat template). dtype "auto" is
        bf16 on a GPU that supports it (fp16 on older ones) and fp32 on CPU. On a GPU the weights
        are loaded straight onto it (a 30B Omni checkpoint need not fit in host memory first)."""
        from akb.models.hf import pick_device, pick_dtype

        who = "audio-lm captioner"
        source = str(source)
        check_local(source, who)
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(dtype, torch_device)
        log.info("loading audio-lm captioner from %s (%s on %s)", source, torch_dtype, torch_device)
        model_type = model_type_of(source, revision, who)
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"audio-lm captioner: {source!r} is a {model_type!r} model; "
                f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        processor = load_processor(source, revision, who)
        try:
            model = load_qwen_audio_model(model_type, source, torch_dtype, torch_device, revision)
        except OSError as e:  # a directory without weights
            raise FileNotFoundError(f"audio-lm captioner: cannot load {source!r}: {e}") from e
        return cls(model, processor, prompt, max_new_tokens, torch_device, batch_size)

    def _prompt_text(self) -> str:
        """The chat-formatted prompt of one clip, rendered by the checkpoint's own template. The
        audio entry carries both a type and an `audio` key: Qwen2-Audio's template tests for the
        key, the Omni templates for the type. Without a prompt the user turn holds the clip alone."""
        content = [{"type": "audio", "audio": "clip"}]
        if self.prompt is not None:
            content.append({"type": "text", "text": self.prompt})
        conversation = [{"role": "user", "content": content}]
        owner = self.processor if getattr(self.processor, "chat_template", None) else self.processor.tokenizer
        if not getattr(owner, "chat_template", None):
            raise ValueError("audio-lm captioner: the processor has no chat template")
        text = owner.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        audio_token = getattr(self.processor, "audio_token", None)
        if audio_token and text.count(audio_token) != 1:
            raise ValueError(
                f"audio-lm captioner: the chat template rendered {text.count(audio_token)} "
                f"{audio_token} placeholders for one clip, not 1: {text!r}"
            )
        return text

    def caption(self, audios: list[np.ndarray]) -> list[str]:
        clips = [check_clip(a, i, "audio-lm captioner") for i, a in enumerate(audios)]
        clips = cut_to_window(clips, self.max_samples, self.sample_rate)
        order = sorted(range(len(clips)), key=lambda i: -clips[i].size)  # stable: ties keep input order
        step = self.batch_size or max(len(clips), 1)
        captions: list[str] = [""] * len(clips)
        for start in range(0, len(order), step):
            batch = order[start : start + step]
            for i, text in zip(batch, self._generate([clips[i] for i in batch])):
                captions[i] = text
        empty = sum(not c for c in captions)
        if empty:
            log.warning("%d of %d captions are empty (the model ended its reply at once)", empty, len(captions))
        return captions

    @torch.inference_mode()
    def _generate(self, clips: list[np.ndarray]) -> list[str]:
        self.processor.tokenizer.padding_side = "left"  # new tokens must follow each prompt's last token
        inputs = self.processor(
            text=[self.text] * len(clips), audio=clips, sampling_rate=self.sample_rate,
            return_tensors="pt", padding=True,
        )
        inputs = to_model(inputs, self.model, self.device)
        config = greedy_config(self.max_new_tokens, self.eos_token_ids, self.pad_token_id)
        output = self.model.generate(**inputs, generation_config=config)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [t.strip() for t in texts]


__all__ = [
    "AUDIO_ONLY_MODEL_TYPES", "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_PROMPT", "DEFAULT_SOURCE", "SUPPORTED_MODEL_TYPES",
    "AudioLMCaptioner", "default_prompt", "tiny_qwen2_audio",
]
