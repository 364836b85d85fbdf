"""DeSTA2.5-Audio (DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B): not runnable by this project.

Its released checkpoint holds the trainable part of the authors' `DeSTA25AudioModel` (model type
`desta25`, package `desta` from github.com/kehanlu/DeSTA2.5-Audio): per-layer prompts, a
transformers `BertEncoder(is_decoder=True)` Q-Former and a LayerNorm + Linear projection over
Whisper-large-v3 layers 7/15/23/31, with Llama-3.1-8B as backbone. This project's DeSTA-style model
(akb.lalm) uses a BLIP-2 Q-Former instead: other parameter names, a LayerNorm on the queries, and
queries that see each other bidirectionally where the authors' decoder-mode BertEncoder makes them
causal. Renaming the weights would load them into a network that computes something else.

Nor can the authors' package be this backend's optional extra (checked against its setup.py and
model code): it is not on PyPI; it installs `lulutils` from GitHub and pins huggingface_hub==0.34.3,
which transformers 5 cannot share an environment with (5.24 needs huggingface_hub>=1.31); it builds its model by
downloading Llama-3.1-8B and Whisper-large-v3 by hub id (its Q-Former accepts only four named Whisper
checkpoints, so no tiny random model of its class can be built offline) and Silero VAD through
torch.hub from GitHub; and it reads clips from files. So the backend refuses, and says how to get
DeSTA2.5's answers with the authors' code in an environment of its own."""

from __future__ import annotations

from akb.audio_llms import AudioLLM, register

REPO = "https://github.com/kehanlu/DeSTA2.5-Audio"
WHY = (
    "its released checkpoint (model type desta25, the authors' `desta` package) is a BertEncoder Q-Former with "
    "causal queries and per-layer prompts over Whisper-large-v3, which this project's DeSTA-style model (akb.lalm, a "
    "BLIP-2 Q-Former) cannot compute; and the authors' package is not on PyPI and pins huggingface_hub==0.34.3, "
    "which transformers 5 cannot share an environment with. Use the authors' code in an environment of its own: "
    f"`git clone {REPO} && pip install -e DeSTA2.5-Audio`, then, for MMAU in the full condition with the authors' "
    "prompt, `cd DeSTA2.5-Audio/examples/evaluation/MMAU-v05.15.25 && python inference_desta25_audio.py "
    "--data_root <MMAU dir> -i <MMAU dir>/mmau-test-mini.json -o mmau-test-mini` (answers in "
    "results/mmau-test-mini.json); for this project's conditions, serve DeSTA25AudioModel.generate behind an "
    "OpenAI-compatible /chat/completions endpoint (each request: the prompt, then the clip as `input_audio`, a base64 "
    "16 kHz WAV, or no audio at all) and use backend 'api'"
)


@register("desta2.5-audio")
class DeSTA25AudioLLM(AudioLLM):
    @classmethod
    def from_entry(cls, entry: dict) -> AudioLLM:
        raise ValueError(f"audio LLM {entry.get('name', '?')}: backend desta2.5-audio cannot be loaded: {WHY}")

    def generate(self, clips, prompts, max_new_tokens):  # never built: from_entry refuses
        raise NotImplementedError
