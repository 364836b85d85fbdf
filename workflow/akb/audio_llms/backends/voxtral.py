"""Voxtral (VoxtralForConditionalGeneration, e.g. mistralai/Voxtral-Mini-3B-2507).

Voxtral's processor renders a conversation through mistral-common's tokenizer (tekken.json), not a
Jinja template, and takes each clip as a base64 WAV inside the conversation; it needs the
`mistral-common` package (the `voxtral` extra). Clips are padded to 30 s windows, each heard as 375
audio tokens, by the processor; none is cut here."""

from __future__ import annotations

import base64

import numpy as np

from akb.audio_llms import register
from akb.audio_llms.transformers_lm import TransformersAudioLLM, load_options
from akb.captioners.api import encode_wav

BEGIN_AUDIO = "[BEGIN_AUDIO]"  # opens each clip's [AUDIO] tokens in mistral-common's instruct format


@register("voxtral")
class VoxtralLLM(TransformersAudioLLM):
    model_types = ("voxtral",)

    def audio_window(self) -> tuple[int, int | None]:
        return int(self.processor.feature_extractor.sampling_rate), None

    @classmethod
    def from_entry(cls, entry: dict) -> VoxtralLLM:
        from transformers.utils import is_mistral_common_available

        # Checked first: without it transformers picks another tokenizer class for Voxtral, and the
        # load fails later with an error that does not name the missing package.
        if not is_mistral_common_available():
            raise ValueError(f"audio LLM {entry['name']} (voxtral): Voxtral's processor needs mistral-common "
                             "(at the version transformers asks for) and pillow: pip install -e '.[voxtral]'")
        return super().from_entry(entry)

    @classmethod
    def load_model(cls, model_type, source, dtype, device, revision, trust_remote_code):
        from transformers import VoxtralForConditionalGeneration

        return VoxtralForConditionalGeneration.from_pretrained(source, **load_options(dtype, device, revision))

    def request(self, clip: np.ndarray | None, prompt: str | None) -> list[dict]:
        """One user turn: the clip (a 16-bit WAV in base64: mistral-common reads audio only as a file),
        then the prompt; no audio part at all without a clip."""
        content = []
        if clip is not None:
            wav = base64.b64encode(encode_wav(clip, self.sample_rate)).decode("ascii")
            content.append({"type": "audio", "base64": wav})
        if prompt is not None:
            content.append({"type": "text", "text": prompt})
        return [{"role": "user", "content": content}]

    def render(self, prompt: str | None, has_audio: bool) -> str:
        """The request as mistral-common writes it, special tokens kept, checked to hold one clip with
        audio and none without. A second of silence stands for the clip: every clip shows as
        [BEGIN_AUDIO] and 375 [AUDIO] per started 30 s."""
        tokenizer = self.processor.tokenizer
        clip = np.zeros(self.sample_rate, dtype=np.float32) if has_audio else None
        ids = tokenizer.apply_chat_template(self.request(clip, prompt), tokenize=True, return_dict=False)
        text = tokenizer.decode(ids, skip_special_tokens=False)
        clips = text.count(BEGIN_AUDIO)
        if clips != int(has_audio):
            raise ValueError(f"{self.who}: the request holds {clips} clips for {int(has_audio)}: {text!r}")
        return text

    def inputs(self, clips: list[np.ndarray] | None, prompts: list[str | None]) -> dict:
        conversations = [self.request(None if clips is None else clips[i], prompt) for i, prompt in enumerate(prompts)]
        self.processor.tokenizer.padding_side = "left"  # new tokens must follow each prompt's last token
        return self.processor.apply_chat_template(conversations, tokenize=True, return_dict=True, return_tensors="pt")
