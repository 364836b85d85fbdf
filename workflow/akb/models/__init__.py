"""Language-model backends behind one interface (`LanguageModel`), chosen by a config entry."""

from __future__ import annotations

import logging
from pathlib import Path

from akb.models.base import BACKENDS, Continuation, LanguageModel, ModelSpec

PACKAGED_ROOT = Path("resources/models")
log = logging.getLogger(__name__)


def load_model(spec: ModelSpec, packaged_root: Path = PACKAGED_ROOT, generation_only: bool = False) -> LanguageModel:
    """Load the model an entry declares, once; stages reuse it for every batch. `generation_only`:
    the job never asks for log-likelihoods, so vLLM may generate (akb.models.vllm_backend)."""
    from akb.models.hf import HFCausalLM, check_model_folder, pick_device

    if spec.backend in ("hf", "packaged"):
        if spec.trust_remote_code:  # on only where the config says so; said in every job's log
            log.warning("model %s: trust_remote_code is on: Python code shipped with %s runs in this process",
                        spec.name, spec.source)
        path = None
        if spec.backend == "packaged":
            path = Path(packaged_root) / spec.source
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"model {spec.name}: {path} is not a converted model directory")
            path = str(path)
        check_model_folder(path or spec.source, f"model {spec.name}")
        from akb.models.vllm_backend import VLLMCausalLM, choose_generation_backend

        if choose_generation_backend(spec, generation_only) == "vllm":
            return VLLMCausalLM.from_pretrained(spec, path)
        return HFCausalLM.from_pretrained(spec, path)
    if spec.backend == "tiny":
        from akb.models.tiny import build_tiny_model

        model, tokenizer = build_tiny_model(spec.source, spec.seed)
        return HFCausalLM(spec, model, tokenizer, pick_device(spec.device))
    if spec.backend == "api":
        from akb.models.api import APIChatModel

        return APIChatModel.from_spec(spec)
    raise ValueError(f"model {spec.name}: unknown backend {spec.backend!r}; one of {BACKENDS}")


__all__ = ["BACKENDS", "Continuation", "LanguageModel", "ModelSpec", "load_model"]
