"""The `hf` backend (a transformers causal LM from the hub or a local folder) and the `packaged` one
(the same, from a model converted by akb.assets.packaged into the packaged-models folder). Generate-only
jobs may generate with vLLM instead (akb.models.vllm_backend.choose_generation_backend)."""

from __future__ import annotations

import logging
from pathlib import Path

from akb.models import register
from akb.models.base import LanguageModel, ModelSpec

log = logging.getLogger(__name__)


@register("hf")
def load_hf(spec: ModelSpec, packaged_root: Path, generation_only: bool) -> LanguageModel:
    warn_remote_code(spec)
    return load_transformers(spec, None, generation_only)


@register("packaged")
def load_packaged(spec: ModelSpec, packaged_root: Path, generation_only: bool) -> LanguageModel:
    warn_remote_code(spec)
    path = Path(packaged_root) / spec.source
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model {spec.name}: {path} is not a converted model directory")
    return load_transformers(spec, str(path), generation_only)


def warn_remote_code(spec: ModelSpec) -> None:
    if spec.trust_remote_code:  # on only where the config says so; said in every job's log
        log.warning("model %s: trust_remote_code is on: Python code shipped with %s runs in this process",
                    spec.name, spec.source)


def load_transformers(spec: ModelSpec, path: str | None, generation_only: bool) -> LanguageModel:
    """The model at `path` (None: `spec.source`, a hub id or folder), run by transformers or vLLM."""
    from akb.models.hf import HFCausalLM, check_model_folder

    check_model_folder(path or spec.source, f"model {spec.name}")
    from akb.models.vllm_backend import VLLMCausalLM, choose_generation_backend

    if choose_generation_backend(spec, generation_only) == "vllm":
        return VLLMCausalLM.from_pretrained(spec, path)
    return HFCausalLM.from_pretrained(spec, path)
