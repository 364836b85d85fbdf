"""Phi-4-multimodal (Phi4MultimodalForCausalLM), in the transformers-native format (model type
`phi4_multimodal`). microsoft/Phi-4-multimodal-instruct's main branch holds the remote-code
format (`phi4mm`); its transformers-format weights are a revision of the repository (set the
entry's `revision`). The processor's audio half is `audio_processor`, not `feature_extractor`."""

from __future__ import annotations

from akb.audio_llms import register
from akb.audio_llms.transformers_lm import TransformersAudioLLM, load_options


@register("phi4-multimodal")
class Phi4MultimodalLLM(TransformersAudioLLM):
    model_types = ("phi4_multimodal",)
    # Its conformer audio encoder convolves over the padding of the shorter clips of a batch, so a
    # batched answer would differ from the same request alone: one request per generate call.
    max_batch = 1

    def audio_window(self) -> tuple[int, int | None]:
        # The audio encoder takes any length (the model card: up to 40 s recommended for QA); no cut.
        return int(self.processor.audio_processor.sampling_rate), None

    @classmethod
    def load_model(cls, model_type, source, dtype, device, revision, trust_remote_code):
        from transformers import Phi4MultimodalForCausalLM

        return Phi4MultimodalForCausalLM.from_pretrained(source, **load_options(dtype, device, revision))
