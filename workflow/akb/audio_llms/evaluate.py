"""`akb evaluate-audio-llm`: a published audio LLM answers an audio benchmark under one condition.

The backend is put behind the text-model interface (`AudioLLMView`), so `akb.probe.run.probe` writes the
rows: the same format, answer extraction, resumable partial file and error rows as `akb evaluate`,
which `akb score-audio` and `akb diagnose` read unchanged. Conditions (akb.diagnostics.analysis):
`full` (the clip), `none` (the prompt with no audio placeholder at all), `fragment-N-k` (piece k of
the clip cut into N; a clip too short to cut is an error row, never padded) and `backbone` (the
question alone to the text backbone, a `models` entry run by akb.models.load_model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from akb.audio_llms import AudioLLM, load_audio_llm
from akb.data.items import MCQItem
from akb.lalm.grounded import AudioPrompt
from akb.models import PACKAGED_ROOT
from akb.models.base import Continuation, LanguageModel, ModelSpec

FRAMES_PER_SECOND = 100  # clip length counts as 10 ms frames when sorting requests by length


def audio_llm_spec(entry: dict) -> ModelSpec:
    """A ModelSpec naming the entry, for the probe's fingerprint and progress bar: what the answers
    depend on (backend, source, revision, dtype, the api block), not the labels, placement, the text
    backbone (a separate condition) or max_new_tokens (the probe records the one it runs with)."""
    known = {"name", "backend", "source", "display_name", "dtype", "device", "revision", "trust_remote_code"}
    skip = known | {"text_backbone", "max_new_tokens", "resources", "batch_size"}
    return ModelSpec(**{k: entry[k] for k in known if entry.get(k) is not None},
                     extra={k: v for k, v in entry.items() if k not in skip})


class AudioLLMView(LanguageModel):
    """`LanguageModel` view of an audio LLM over a fixed set of clips keyed by item id (None: no audio)."""

    def __init__(self, spec: ModelSpec, llm: AudioLLM, clips: dict[str, np.ndarray | None]):
        self.spec = spec
        self.llm = llm
        self.clips = clips

    def prompt(self, user_text: str) -> str:
        raise TypeError("an audio LLM's prompt needs its item: use item_prompt(item, text)")

    def item_prompt(self, item: MCQItem, user_text: str) -> AudioPrompt:
        if item.id not in self.clips:
            raise KeyError(f"no clip loaded for item {item.id}")
        return AudioPrompt(user_text, item.id)

    def continuation(self, text: str) -> str:
        return text

    def token_length(self, text: str) -> int:
        """Characters of the prompt plus 10 ms frames of its clip: only the order of batches
        depends on it (longest first), never an answer."""
        clip = self.clips.get(getattr(text, "item_id", None))
        frames = 0 if clip is None else clip.size * FRAMES_PER_SECOND // self.llm.sample_rate
        return len(text) + frames

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        raise NotImplementedError(f"audio LLM {self.spec.name}: published audio LLMs are evaluated by generation only")

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        return self.llm.generate([self.clips[p.item_id] for p in prompts], [str(p) for p in prompts], max_new_tokens)


def check_condition(condition: str) -> None:
    from akb.diagnostics.conditions import EXTRA_CONDITIONS, FULL, NONE, parse_fragment_condition

    parsed = parse_fragment_condition(condition)
    if condition not in (FULL, NONE, *EXTRA_CONDITIONS) and (parsed is None or not 0 <= parsed[1] < parsed[0]):
        raise ValueError(f"unknown condition {condition!r}: full, none, backbone, fragment-N-k (0 <= k < N), "
                         f"{', '.join(EXTRA_CONDITIONS)}")


def evaluate_audio_llm(items: list[MCQItem], entry: dict, condition: str, out: str | Path, *,
                       prompt_style: str = "glitters", max_new_tokens: int = 32, batch_size: int = 8,
                       text_backbone: dict | None = None, packaged_root: str | Path = PACKAGED_ROOT,
                       min_fragment_samples: int | None = None, llm: AudioLLM | None = None,
                       gpus: int | None = None) -> None:
    """Write one prediction row per item to `out` (resuming from `<out>.partial`). `llm` may be given
    already loaded (tests, reuse across conditions); otherwise the entry's backend is loaded.
    `gpus`: the job's GPUs, over which the text backbone is spread (backbone condition)."""
    from akb.diagnostics.conditions import BACKBONE, MIN_FRAGMENT_SAMPLES, condition_clips
    from akb.models import load_model
    from akb.probe.run import probe
    from akb.probe.prompts import styled_spec

    inputs = {"condition": condition, "audio_llm": entry.get("name")}
    if condition == BACKBONE:
        if not text_backbone:
            raise ValueError(f"audio LLM {entry.get('name')}: condition backbone needs the text backbone's "
                             "models[] entry (--text-backbone)")
        declared = entry.get("text_backbone")
        if declared and text_backbone.get("name") != declared:
            raise ValueError(f"audio LLM {entry.get('name')}: text_backbone is {declared!r}, "
                             f"but the models[] entry given is {text_backbone.get('name')!r}")
        spec = styled_spec(ModelSpec.from_config(text_backbone, gpus), prompt_style)
        model = load_model(spec, Path(packaged_root), generation_only=True)
        probe(model, items, out, "generate", batch_size, max_new_tokens, style=prompt_style, inputs=inputs)
        return
    check_condition(condition)
    spec = styled_spec(audio_llm_spec(entry), prompt_style)
    if spec.chat.system_prompt:
        raise ValueError(f"prompt style {prompt_style!r} brings a system prompt; audio LLM backends send none")
    llm = llm or load_audio_llm(entry)
    min_samples = MIN_FRAGMENT_SAMPLES if min_fragment_samples is None else min_fragment_samples
    clips, errors = condition_clips(items, condition, llm.sample_rate, min_samples)
    probe(AudioLLMView(spec, llm, clips), items, out, "generate", batch_size, max_new_tokens, errors=errors,
          style=prompt_style, inputs=inputs)


__all__ = ["AudioLLMView", "audio_llm_spec", "check_condition", "evaluate_audio_llm"]
