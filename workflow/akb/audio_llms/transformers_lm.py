"""What every transformers audio LLM shares: loading a checkpoint (hub id or folder) with its
processor, where a reply ends (eos ids), checking clips and cutting them to the model's window,
greedy generation settings, and `TransformersAudioLLM`, the base of the transformers backends.
The `audio-lm` captioner (akb.captioners.audio_lm) uses the same pieces.

Each request is one user turn rendered by the checkpoint's own chat template: the clip first (when
there is one), then the prompt; no system prompt is added (templates that bring a default one keep it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from akb.audio_llms import AudioLLM

log = logging.getLogger(__name__)

# ChatML's end of turn: Qwen chat models end a reply with it, whatever their tokenizer calls `eos`.
END_OF_TURN = "<|im_end|>"


def check_local(source: str, who: str) -> None:
    """A source written as a path must be an existing model directory (a hub id is `org/name`)."""
    path = Path(source).expanduser()
    looks_local = path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1 or path.exists()
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"{who}: model directory {source!r} not found")
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{who}: cannot load {source!r}: no config.json in the directory")


def model_type_of(source: str, revision: str | None, who: str, trust_remote_code: bool = False) -> str:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code).model_type
    except (OSError, ValueError) as e:  # unknown or malformed id, gated repo, offline without a cached copy
        raise FileNotFoundError(f"{who}: cannot load {source!r}: {e}") from e


def load_options(dtype: torch.dtype, device: torch.device, revision: str | None, **more) -> dict:
    """from_pretrained options: a GPU gets the weights directly (a 30B checkpoint need not fit in host
    memory first); on CPU they load where they are anyway."""
    options = {"dtype": dtype, "revision": revision, **more}
    if device.type != "cpu":
        options["device_map"] = device  # one device: no accelerate hooks, the model is simply there
    return options


def load_qwen_audio_model(model_type: str, source: str, dtype: torch.dtype, device: torch.device,
                          revision: str | None):
    """Qwen2-Audio, or the thinker (the part that writes text) of a Qwen2.5-Omni or Qwen3-Omni
    checkpoint, saved alone or within the full model."""
    import transformers

    options = load_options(dtype, device, revision)
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


def load_processor(source: str, revision: str | None, who: str, trust_remote_code: bool = False):
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as e:  # a directory without processor files
        raise FileNotFoundError(f"{who}: cannot load {source!r}: {e}") from e
    except ImportError as e:  # the Omni processors build their video half, which needs torchvision
        reason = str(e).strip().splitlines()[0]
        raise ValueError(
            f"{who}: cannot load {source!r}: a package it needs is missing ({reason}); "
            "Qwen2.5-Omni and Qwen3-Omni processors need torchvision (the build matching your torch), "
            "Voxtral's needs mistral-common"
        ) from e


def eos_token_ids(model, tokenizer, who: str) -> list[int]:
    """Where a reply ends: the checkpoint's generation eos ids, the tokenizer's eos, and ChatML's
    end of turn when the tokenizer has it as a token of its own."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    # Asked through the vocabulary: mistral-common's tokenizer (Voxtral) logs a failure for every
    # unknown token converted.
    if END_OF_TURN in tokenizer.get_vocab():
        ids.append(tokenizer.convert_tokens_to_ids(END_OF_TURN))
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ValueError(f"{who}: neither the model nor the tokenizer names an end-of-sequence token")
    return ids


def check_clip(audio: np.ndarray, index: int, who: str) -> np.ndarray:
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim != 1:
        raise ValueError(f"{who}: clip {index}: expected a mono 1-D clip, got shape {clip.shape}")
    if clip.size == 0:
        raise ValueError(f"{who}: clip {index} holds no samples")
    if not np.isfinite(clip).all():
        raise ValueError(f"{who}: clip {index} contains NaN or infinite samples")
    return clip


def cut_to_window(clips: list[np.ndarray], max_samples: int | None, sample_rate: int) -> list[np.ndarray]:
    """Clips cut to the model's window (its feature extractor's `n_samples`), with a warning naming
    how many were cut. Cut here, not in the processor: Qwen3-Omni's processor does not truncate in
    every transformers version, and a clip must be heard the same way whichever is installed."""
    if not max_samples:
        return clips
    cut = [c.size / sample_rate for c in clips if c.size > max_samples]
    if cut:
        log.warning("%d of %d clips are longer than the model's %.0f s window (longest %.1f s); only their "
                    "first %.0f s are heard", len(cut), len(clips), max_samples / sample_rate, max(cut),
                    max_samples / sample_rate)
    return [c[:max_samples] for c in clips]


def greedy_config(max_new_tokens: int, eos_ids: list[int], pad_id: int):
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        # Neutral values, so that the checkpoint's sampling settings are not merged in (and warned about).
        temperature=1.0, top_p=1.0, top_k=50,
        eos_token_id=eos_ids, pad_token_id=pad_id,
    )


def to_model(inputs, model, device) -> dict[str, torch.Tensor]:
    """The processor's tensors on the model's device, floating ones in its dtype."""
    dtype = model.dtype
    return {k: v.to(device, dtype) if v.is_floating_point() else v.to(device)
            for k, v in inputs.items() if isinstance(v, torch.Tensor)}


class TransformersAudioLLM(AudioLLM):
    """An audio LLM from transformers and its processor. Subclasses name the config `model_types`
    they accept and how a checkpoint loads (`load_model`); the defaults here render each request
    with the processor's chat template and call the processor on (texts, clips), which suits
    processors that expand one audio placeholder per clip (Qwen2-Audio, the Omni thinkers, Audio
    Flamingo 3, Phi-4-multimodal)."""

    model_types: tuple[str, ...] = ()
    audio_entry: dict = {"type": "audio", "audio": "clip"}  # Qwen2-Audio's template tests for the key, others the type
    # Extra processor arguments. Qwen's processors pad text only when asked; Audio Flamingo 3's pads
    # text by default, and a `padding` given here would also pad its Whisper windows wrongly.
    processor_kwargs: dict = {"padding": True}
    # Requests per generate call (None: the whole batch). 1 for a model whose answers would depend on
    # its batch mates (an audio encoder whose convolutions see the padding of shorter clips).
    max_batch: int | None = None

    def __init__(self, model, processor, name: str | None = None, device: torch.device | str | None = None):
        super().__init__(name or self.backend)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.sample_rate, self.max_samples = self.audio_window()
        tokenizer = processor.tokenizer
        self.eos_token_ids = eos_token_ids(model, tokenizer, self.who)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.eos_token_ids[0]

    @property
    def who(self) -> str:
        return f"audio LLM {self.name} ({self.backend})"

    def audio_window(self) -> tuple[int, int | None]:
        """(sampling rate, the longest clip heard in samples or None) of the feature extractor."""
        extractor = self.processor.feature_extractor
        return int(extractor.sampling_rate), getattr(extractor, "n_samples", None)

    # -- loading

    @classmethod
    def from_entry(cls, entry: dict) -> TransformersAudioLLM:
        """Load a hub id or a local directory. dtype "auto" is bf16 on a GPU that supports it (fp16
        on older ones) and fp32 on CPU."""
        from akb.models.hf import pick_device, pick_dtype

        name, source = entry["name"], str(entry["source"])
        who = f"audio LLM {name} ({cls.backend})"
        check_local(source, who)
        device = pick_device(entry.get("device") or "auto")
        dtype = pick_dtype(entry.get("dtype") or "auto", device)
        revision, remote = entry.get("revision"), bool(entry.get("trust_remote_code", False))
        model_type = model_type_of(source, revision, who, remote)
        if model_type not in cls.model_types:
            raise ValueError(f"{who}: {source!r} is a {model_type!r} model; backend {cls.backend} reads "
                             f"{', '.join(cls.model_types)}")
        log.info("loading audio LLM %s from %s (%s on %s)", name, source, dtype, device)
        processor = load_processor(source, revision, who, remote)
        try:
            model = cls.load_model(model_type, source, dtype, device, revision, remote)
        except OSError as e:  # a directory without weights
            raise FileNotFoundError(f"{who}: cannot load {source!r}: {e}") from e
        return cls(model, processor, name, device)

    @classmethod
    def load_model(cls, model_type: str, source: str, dtype, device, revision, trust_remote_code: bool):
        raise NotImplementedError

    # -- requests

    def conversation(self, prompt: str | None, has_audio: bool) -> list[dict]:
        content = [dict(self.audio_entry)] if has_audio else []
        if prompt is not None:
            content.append({"type": "text", "text": prompt})
        return [{"role": "user", "content": content}]

    def render(self, prompt: str | None, has_audio: bool) -> str:
        """The chat-formatted request, by the checkpoint's own template, checked to hold exactly one
        audio placeholder with a clip and none without."""
        owner = self.processor if getattr(self.processor, "chat_template", None) else self.processor.tokenizer
        if not getattr(owner, "chat_template", None):
            raise ValueError(f"{self.who}: the processor has no chat template")
        text = owner.apply_chat_template(self.conversation(prompt, has_audio), add_generation_prompt=True,
                                         tokenize=False)
        audio_token = getattr(self.processor, "audio_token", None)
        if audio_token and text.count(audio_token) != int(has_audio):
            raise ValueError(f"{self.who}: the chat template rendered {text.count(audio_token)} {audio_token} "
                             f"placeholders for {int(has_audio)} clip(s): {text!r}")
        return text

    def inputs(self, clips: list[np.ndarray] | None, prompts: list[str | None]) -> dict:
        """The processor's batch (left padded) for clips (None: text only) and their prompts."""
        texts = [self.render(p, clips is not None) for p in prompts]
        self.processor.tokenizer.padding_side = "left"  # new tokens must follow each prompt's last token
        audio = {} if clips is None else {"audio": clips, "sampling_rate": self.sample_rate}
        return self.processor(text=texts, return_tensors="pt", **self.processor_kwargs, **audio)

    # -- generation

    def prepare(self, clips: list[np.ndarray | None]) -> list[np.ndarray | None]:
        checked = {i: check_clip(c, i, self.who) for i, c in enumerate(clips) if c is not None}
        cut = dict(zip(checked, cut_to_window(list(checked.values()), self.max_samples, self.sample_rate)))
        return [cut.get(i) for i in range(len(clips))]

    def generate(self, clips: list[np.ndarray | None], prompts: list[str | None], max_new_tokens: int) -> list[str]:
        """Requests with a clip and requests without one go in separate calls (a processor takes
        audio for every text or for none)."""
        self.check_batch(clips, prompts, max_new_tokens)
        clips = self.prepare(clips)
        replies: list[str] = [""] * len(clips)
        for has_audio in (True, False):
            group = [i for i, c in enumerate(clips) if (c is not None) == has_audio]
            step = self.max_batch or max(len(group), 1)
            for start in range(0, len(group), step):
                part = group[start:start + step]
                batch_clips = [clips[i] for i in part] if has_audio else None
                for i, text in zip(part, self._generate(batch_clips, [prompts[i] for i in part], max_new_tokens)):
                    replies[i] = text
        return replies

    @torch.inference_mode()
    def _generate(self, clips: list[np.ndarray] | None, prompts: list[str | None], max_new_tokens: int) -> list[str]:
        inputs = to_model(self.inputs(clips, prompts), self.model, self.device)
        config = greedy_config(max_new_tokens, self.eos_token_ids, self.pad_token_id)
        output = self.model.generate(**inputs, generation_config=config)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [t.strip() for t in texts]
