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
# ChatML's end of turn: Qwen chat models end a reply with it, whatever their tokenizer calls `eos`.
END_OF_TURN = "<|im_end|>"
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
    the supported families): `akb.caption.caption_items` loads (and resamples) them at that rate.
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
        self.eos_token_ids = _eos_token_ids(model, tokenizer)
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
        from transformers import AutoConfig, AutoProcessor

        from akb.models.hf import pick_device, pick_dtype

        source = str(source)
        _check_local(source)
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(dtype, torch_device)
        log.info("loading audio-lm captioner from %s (%s on %s)", source, torch_dtype, torch_device)
        try:
            model_type = AutoConfig.from_pretrained(source, revision=revision).model_type
        except (OSError, ValueError) as e:  # unknown or malformed id, gated repo, offline without a cached copy
            raise FileNotFoundError(f"audio-lm captioner: cannot load {source!r}: {e}") from e
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"audio-lm captioner: {source!r} is a {model_type!r} model; "
                f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        try:
            processor = AutoProcessor.from_pretrained(source, revision=revision)
            model = _load_model(model_type, source, torch_dtype, torch_device, revision)
        except OSError as e:  # a directory without weights or processor files
            raise FileNotFoundError(f"audio-lm captioner: cannot load {source!r}: {e}") from e
        except ImportError as e:  # the Omni processors build their video half, which needs torchvision
            reason = str(e).strip().splitlines()[0]
            raise ValueError(
                f"audio-lm captioner: cannot load {source!r}: a package it needs is missing ({reason}); "
                "Qwen2.5-Omni and Qwen3-Omni processors need torchvision (the build matching your torch)"
            ) from e
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
        clips = [self._check_clip(a, i) for i, a in enumerate(audios)]
        if self.max_samples:
            cut = [c.size / self.sample_rate for c in clips if c.size > self.max_samples]
            if cut:
                log.warning(
                    "%d of %d clips are longer than the model's %.0f s window (longest %.1f s); "
                    "only their first %.0f s are heard",
                    len(cut), len(clips), self.max_samples / self.sample_rate, max(cut),
                    self.max_samples / self.sample_rate,
                )
            # Cut here, not in the processor: Qwen3-Omni's processor does not truncate in every
            # transformers version, and a clip must be heard the same way whichever is installed.
            clips = [c[: self.max_samples] for c in clips]
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

    def _check_clip(self, audio: np.ndarray, index: int) -> np.ndarray:
        clip = np.asarray(audio, dtype=np.float32)
        if clip.ndim != 1:
            raise ValueError(f"audio-lm captioner: clip {index}: expected a mono 1-D clip, got shape {clip.shape}")
        if clip.size == 0:
            raise ValueError(f"audio-lm captioner: clip {index} holds no samples")
        if not np.isfinite(clip).all():
            raise ValueError(f"audio-lm captioner: clip {index} contains NaN or infinite samples")
        return clip

    @torch.inference_mode()
    def _generate(self, clips: list[np.ndarray]) -> list[str]:
        from transformers import GenerationConfig

        self.processor.tokenizer.padding_side = "left"  # new tokens must follow each prompt's last token
        inputs = self.processor(
            text=[self.text] * len(clips), audio=clips, sampling_rate=self.sample_rate,
            return_tensors="pt", padding=True,
        )
        dtype = self.model.dtype
        inputs = {
            k: v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
            # Neutral values, so that the checkpoint's sampling settings are not merged in (and warned about).
            temperature=1.0,
            top_p=1.0,
            top_k=50,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
        )
        output = self.model.generate(**inputs, generation_config=config)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [t.strip() for t in texts]


def _check_local(source: str) -> None:
    """A source written as a path must be an existing model directory (a hub id is `org/name`)."""
    path = Path(source).expanduser()
    looks_local = path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1 or path.exists()
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"audio-lm captioner: model directory {source!r} not found")
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"audio-lm captioner: cannot load {source!r}: no config.json in the directory")


def _load_model(model_type: str, source: str, dtype: torch.dtype, device: torch.device, revision: str | None):
    import transformers

    # A GPU gets the weights directly; on CPU they load where they are anyway.
    options = {"dtype": dtype, "revision": revision}
    if device.type != "cpu":
        options["device_map"] = device  # one device: no accelerate hooks, the model is simply there
    if model_type == "qwen2_audio":
        return transformers.Qwen2AudioForConditionalGeneration.from_pretrained(source, **options)
    if model_type == "qwen2_5_omni_thinker":
        return transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(source, **options)
    if model_type == "qwen3_omni_moe_thinker":
        return transformers.Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(source, **options)
    full_class = (
        transformers.Qwen3OmniMoeForConditionalGeneration if model_type == "qwen3_omni_moe"
        else transformers.Qwen2_5OmniForConditionalGeneration
    )
    # enable_audio_output=False: the speech half (talker and token2wav or code2wav) is not built,
    # whatever the checkpoint's config says; any weights of it are skipped.
    full = full_class.from_pretrained(source, enable_audio_output=False, **options)
    return full.thinker


def _eos_token_ids(model, tokenizer) -> list[int]:
    """Where a reply ends: the checkpoint's generation eos ids, the tokenizer's eos, and ChatML's
    end of turn when the tokenizer has it as a token of its own."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.append(end_of_turn)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ValueError("audio-lm captioner: neither the model nor the tokenizer names an end-of-sequence token")
    return ids


# ---------------------------------------------------------------------------------------------
# A tiny random Qwen2-Audio, built offline: tests and offline demos run the real code path with it.

# Qwen2-Audio-7B-Instruct's chat template, as shipped.
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2_audio(seed: int = 0):
    """(model, processor): a randomly initialised Qwen2AudioForConditionalGeneration (a 2-layer
    64-wide audio encoder and text decoder) with a Qwen2AudioProcessor of the real kind (a 128-bin
    Whisper feature extractor, an offline-trained byte-level BPE tokenizer with Qwen2-Audio's special
    tokens and chat template). Identical for identical seeds; its captions are noise. Its generation
    config samples, like the real checkpoint's, so that a captioner relying on it would show."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    from akb.models.tiny import ChatFormat, build_tokenizer

    chat = ChatFormat(
        bos=None,
        eos=END_OF_TURN,
        pad="<|endoftext|>",
        extra_special=("<|im_start|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"),
        template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )
    tokenizer = build_tokenizer(chat)
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder", "d_model": 64, "encoder_layers": 2,
            "encoder_attention_heads": 4, "encoder_ffn_dim": 128, "num_mel_bins": 128,
            "max_source_positions": 1500,  # the encoder's fixed input: 3000 mel frames, 30 s
        },
        text_config={
            "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        },
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.do_sample, generation.temperature, generation.top_p, generation.top_k = True, 0.7, 0.5, 20
    return model, processor


__all__ = [
    "AUDIO_ONLY_MODEL_TYPES", "DEFAULT_MAX_NEW_TOKENS", "DEFAULT_PROMPT", "DEFAULT_SOURCE", "SUPPORTED_MODEL_TYPES",
    "AudioLMCaptioner", "default_prompt", "tiny_qwen2_audio",
]
