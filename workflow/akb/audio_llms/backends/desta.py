"""DeSTA2.5-Audio (DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B): not readable by this project.

Its released checkpoint holds the trainable part of the authors' `DeSTA25AudioModel` (model type
`desta25`, package `desta` from github.com/kehanlu/DeSTA2.5-Audio): per-layer prompts, a
transformers `BertEncoder(is_decoder=True)` Q-Former and a LayerNorm + Linear projection over
Whisper-large-v3 layers 7/15/23/31, with Llama-3.1-8B as backbone. This project's DeSTA-style model
(akb.lalm) uses a BLIP-2 Q-Former instead: other parameter names, a LayerNorm on the queries, and
queries that see each other bidirectionally where the authors' decoder-mode BertEncoder makes them
causal. Renaming the weights would load them into a network that computes something else, so the
backend refuses with that explanation rather than producing numbers that are not DeSTA2.5's."""

from __future__ import annotations

from akb.audio_llms import AudioLLM, register

WHY = ("its released checkpoint (model type desta25, the authors' `desta` package) is a BertEncoder "
       "Q-Former with causal queries and per-layer prompts over Whisper-large-v3; this project's DeSTA-style "
       "model (akb.lalm) is a BLIP-2 Q-Former with bidirectional queries, other parameter names and a query "
       "LayerNorm, so the weights cannot be read by it without computing a different network. Run the authors' "
       "package (github.com/kehanlu/DeSTA2.5-Audio) behind an OpenAI-compatible server and use backend 'api', "
       "or evaluate the project's own audio LLM with `akb evaluate`")


@register("desta2.5-audio")
class DeSTA25AudioLLM(AudioLLM):
    @classmethod
    def from_entry(cls, entry: dict) -> AudioLLM:
        raise ValueError(f"audio LLM {entry.get('name', '?')}: backend desta2.5-audio cannot be loaded: {WHY}")

    def generate(self, clips, prompts, max_new_tokens):  # never built: from_entry refuses
        raise NotImplementedError
