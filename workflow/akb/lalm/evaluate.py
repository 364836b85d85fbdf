"""`akb evaluate`: a trained audio LLM of this project answers each audio question under one
diagnostic condition (akb.diagnostics.conditions), or its text backbone alone (`backbone`);
predictions in the probe's format, resumable, fingerprinted by the checkpoint and the recipe."""

from __future__ import annotations

from pathlib import Path

from akb.data.items import MCQItem
from akb.diagnostics.conditions import BACKBONE, MIN_FRAGMENT_SAMPLES, condition_clips
from akb.io import digest, sha256_tree
from akb.models import PACKAGED_ROOT, ModelSpec, load_model
from akb.probe.prompts import styled_spec
from akb.probe.run import probe


def evaluate_lalm(items: list[MCQItem], model_entry: dict, grounded: dict, condition: str, out: str | Path, *,
                  checkpoint: str | Path | None = None, transcripts: str | Path | None = None,
                  mode: str = "generate", batch_size: int = 8, max_new_tokens: int = 32,
                  prompt_style: str = "lettered", min_fragment_samples: int = MIN_FRAGMENT_SAMPLES,
                  packaged_root: str | Path = PACKAGED_ROOT, gpus: int | None = None) -> None:
    from akb.lalm.grounded import Clip, GroundedLM, build_lalm
    from akb.lalm.transcripts import transcripts_for

    spec = styled_spec(ModelSpec.from_config(model_entry, gpus), prompt_style)
    errors: dict[str, str] = {}
    inputs = {"condition": condition}  # the partial file's fingerprint beyond the items and prompts
    if condition == BACKBONE:  # the question alone, to the audio LLM's own text backbone
        model = load_model(spec, Path(packaged_root), generation_only=mode == "generate")
    else:
        if checkpoint is None:
            raise ValueError(f"condition {condition}: pass --checkpoint (the trained audio LLM)")
        audio_of, errors = condition_clips(items, condition, min_fragment_samples=min_fragment_samples)
        heard = (i for i, audio in audio_of.items() if audio is not None)
        texts = transcripts_for(transcripts, grounded["use_transcript"], heard) or {}
        lalm = build_lalm(spec, grounded, Path(packaged_root), checkpoint=Path(checkpoint))
        model = GroundedLM(spec, lalm, {i: Clip(audio, texts.get(i)) for i, audio in audio_of.items()})
        inputs |= {"checkpoint": sha256_tree(checkpoint), "grounded": digest(grounded), "transcripts": digest(texts)}
    probe(model, items, out, mode, batch_size, max_new_tokens, errors=errors, style=prompt_style, inputs=inputs)
