"""Qwen2-Audio, Qwen2.5-Omni and Qwen3-Omni (thinker only: the part that writes text).

Each backend accepts its family's config model types: the full Omni checkpoint (of which only the
thinker is built, never the talker and token2wav/code2wav that speak) or a thinker saved alone.
Clips are heard up to the feature extractor's window (30 s for Qwen2-Audio, 300 s for the Omni
checkpoints) and cut to it with a warning.
"""

from __future__ import annotations

from akb.audio_llms import register
from akb.audio_llms.transformers_lm import TransformersAudioLLM, load_qwen_audio_model


class QwenAudioLLM(TransformersAudioLLM):
    @classmethod
    def load_model(cls, model_type, source, dtype, device, revision, trust_remote_code):
        return load_qwen_audio_model(model_type, source, dtype, device, revision)


@register("qwen2-audio")
class Qwen2AudioLLM(QwenAudioLLM):
    """Qwen2AudioForConditionalGeneration, e.g. Qwen/Qwen2-Audio-7B-Instruct."""

    model_types = ("qwen2_audio",)


@register("qwen2.5-omni")
class Qwen25OmniLLM(QwenAudioLLM):
    """Qwen2_5OmniThinkerForConditionalGeneration, e.g. Qwen/Qwen2.5-Omni-7B."""

    model_types = ("qwen2_5_omni", "qwen2_5_omni_thinker")


@register("qwen3-omni")
class Qwen3OmniLLM(QwenAudioLLM):
    """Qwen3OmniMoeThinkerForConditionalGeneration, e.g. Qwen/Qwen3-Omni-30B-A3B-Instruct."""

    model_types = ("qwen3_omni_moe", "qwen3_omni_moe_thinker")
