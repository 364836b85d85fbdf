"""Voxtral (VoxtralForConditionalGeneration, e.g. mistralai/Voxtral-Mini-3B-2507).

Voxtral's processor renders a conversation through mistral-common's tokenizer (tekken.json), not a
Jinja template, and takes each clip as a base64 WAV inside the conversation; it needs the
`mistral-common` package. Clips are split into 30 s windows by the processor; none is cut here."""

from __future__ import annotations

import base64

import numpy as np

from akb.audio_llms import register
from akb.audio_llms.transformers_lm import TransformersAudioLLM, load_options
from akb.captioners.api import encode_wav


@register("voxtral")
class VoxtralLLM(TransformersAudioLLM):
    model_types = ("voxtral",)

    def audio_window(self) -> tuple[int, int | None]:
        return int(self.processor.feature_extractor.sampling_rate), None

    @classmethod
    def load_model(cls, model_type, source, dtype, device, revision, trust_remote_code):
        from transformers import VoxtralForConditionalGeneration

        return VoxtralForConditionalGeneration.from_pretrained(source, **load_options(dtype, device, revision))

    def inputs(self, clips: list[np.ndarray] | None, prompts: list[str | None]) -> dict:
        conversations = []
        for i, prompt in enumerate(prompts):
            content = []
            if clips is not None:
                wav = base64.b64encode(encode_wav(clips[i], self.sample_rate)).decode("ascii")
                content.append({"type": "audio", "base64": wav})
            if prompt is not None:
                content.append({"type": "text", "text": prompt})
            conversations.append([{"role": "user", "content": content}])
        self.processor.tokenizer.padding_side = "left"
        return self.processor.apply_chat_template(conversations, tokenize=True, return_dict=True,
                                                  return_tensors="pt")
