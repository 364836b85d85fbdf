"""Language-model backends behind one interface (`LanguageModel`), chosen by a config entry's
`backend`: each is a loader registered with `@register("name")` in a module of akb/models/backends/."""

from __future__ import annotations

from pathlib import Path

from akb.models.base import MODEL_BACKENDS, Continuation, LanguageModel, ModelSpec

PACKAGED_ROOT = Path("resources/models")
register = MODEL_BACKENDS.register


def load_model(spec: ModelSpec, packaged_root: Path = PACKAGED_ROOT, generation_only: bool = False) -> LanguageModel:
    """Load the model an entry declares, once; stages reuse it for every batch. `generation_only`:
    the job never asks for log-likelihoods, so vLLM may generate (akb.models.vllm_backend)."""
    load = MODEL_BACKENDS.get(spec.backend, f"model {spec.name}")
    return load(spec, Path(packaged_root), generation_only)


__all__ = ["MODEL_BACKENDS", "Continuation", "LanguageModel", "ModelSpec", "load_model", "register"]
