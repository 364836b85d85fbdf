"""Audio Flamingo 3 (AudioFlamingo3ForConditionalGeneration, e.g. nvidia/audio-flamingo-3-hf).

Its processor cuts a clip into 30 s Whisper windows and hears up to `max_audio_len` seconds (600 s
in the published processor); longer clips are cut to that here, with a warning."""

from __future__ import annotations

from akb.audio_llms import register
from akb.audio_llms.transformers_lm import TransformersAudioLLM, load_options


@register("audio-flamingo-3")
class AudioFlamingo3LLM(TransformersAudioLLM):
    model_types = ("audioflamingo3",)
    processor_kwargs: dict = {}  # it pads text itself; `padding` would reach its Whisper windows too

    def audio_window(self) -> tuple[int, int | None]:
        rate = int(self.processor.feature_extractor.sampling_rate)
        seconds = getattr(self.processor, "max_audio_len", None)
        return rate, int(seconds * rate) if seconds else None

    @classmethod
    def load_model(cls, model_type, source, dtype, device, revision, trust_remote_code):
        from transformers import AudioFlamingo3ForConditionalGeneration

        return AudioFlamingo3ForConditionalGeneration.from_pretrained(source, **load_options(dtype, device, revision))
