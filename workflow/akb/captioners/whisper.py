"""The `whisper` captioner: what a Whisper ASR model hears said in the clip (the paper's speech captioner).

Any transformers Whisper works: a hub id (openai/whisper-large-v3 in the paper config) or a local
directory (the offline demo converts Whisper tiny.en from a PyPI package, see akb.assets.packaged).
Clips up to Whisper's 30 s window are transcribed in batches; longer clips are transcribed with
transformers' long-form (sequential 30 s windows) decoding instead of being cut.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from akb.audio import is_silent
from akb.captioners import Captioner
from akb.models.hf import check_model_folder, pick_device, pick_dtype

log = logging.getLogger(__name__)

NO_SPEECH = "No speech was recognised in the clip."


def transcript_caption(transcript: str) -> str:
    """The caption an LLM reads: the transcript quoted, so it is not mistaken for a description."""
    transcript = " ".join(transcript.split())
    return f'Speech transcript: "{transcript}"' if transcript else NO_SPEECH


class WhisperCaptioner(Captioner):
    def __init__(self, model, processor, device: torch.device, max_new_tokens: int = 128, language: str | None = None):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        # The decoder holds max_target_positions tokens, its few start tokens included.
        self.max_new_tokens = min(max_new_tokens, model.config.max_target_positions - 4)
        # Multilingual checkpoints detect the language unless told; English-only ones must not be told.
        self.language = language if getattr(model.generation_config, "is_multilingual", False) else None
        self.sample_rate = processor.feature_extractor.sampling_rate
        self.window = processor.feature_extractor.n_samples  # 30 s at 16 kHz for every released Whisper

    @classmethod
    def from_pretrained(cls, source: str, device: str = "auto", dtype: str = "auto", **kwargs) -> WhisperCaptioner:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        torch_device = pick_device(device)
        check_model_folder(source, "whisper captioner")
        try:
            processor = WhisperProcessor.from_pretrained(source)
            model = WhisperForConditionalGeneration.from_pretrained(source, dtype=pick_dtype(dtype, torch_device))
        except (OSError, ValueError) as e:  # unknown id or missing dir (a malformed id is a ValueError)
            raise FileNotFoundError(f"whisper captioner: cannot load {source!r}: {e}") from e
        return cls(model, processor, torch_device, **kwargs)

    def transcribe(self, audios: list[np.ndarray]) -> list[str]:
        """Transcripts in input order; "" for a silent clip, which is not sent to the model
        (Whisper "hears" words in silence: "you", "Thank you.")."""
        spoken = [i for i, audio in enumerate(audios) if not is_silent(audio)]
        texts = [""] * len(audios)
        for i, text in zip(spoken, self._transcribe_spoken([audios[i] for i in spoken]) if spoken else []):
            texts[i] = text
        return texts

    def _transcribe_spoken(self, audios: list[np.ndarray]) -> list[str]:
        """Clips longer than the window are decoded apart from the others, since long-form decoding
        predicts timestamps, which costs the short clips accuracy."""
        texts: list[str] = [""] * len(audios)
        for long_form in (False, True):
            group = [i for i, audio in enumerate(audios) if (len(audio) > self.window) == long_form]
            if group:
                for i, text in zip(group, self._decode([audios[i] for i in group], long_form)):
                    texts[i] = text
        return texts

    def _decode(self, audios: list[np.ndarray], long_form: bool) -> list[str]:
        features = self.processor(
            audios,
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            return_attention_mask=True,
            # Long-form decoding needs the whole clip (not cut at 30 s) and a mask telling where it ends.
            **({"truncation": False, "padding": "longest"} if long_form else {}),
        )
        inputs = {
            "input_features": features.input_features.to(self.device, self.model.dtype),
            "attention_mask": features.attention_mask.to(self.device),
        }
        options = {"language": self.language} if self.language else {}
        if long_form:  # transformers finds the 30 s window boundaries from predicted timestamps
            options["return_timestamps"] = True
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **options)
        if not isinstance(ids, torch.Tensor):  # long-form returns a dict when asked for segments
            ids = ids["sequences"]
        return [text.strip() for text in self.processor.batch_decode(ids, skip_special_tokens=True)]

    def caption(self, audios: list[np.ndarray]) -> list[str]:
        return [transcript_caption(text) for text in self.transcribe(audios)]
