"""The `api` backend: a chat model behind an OpenAI-compatible endpoint (akb.models.api)."""

from __future__ import annotations

from pathlib import Path

from akb.models import register
from akb.models.base import LanguageModel, ModelSpec


@register("api")
def load_api(spec: ModelSpec, packaged_root: Path, generation_only: bool) -> LanguageModel:
    from akb.models.api import APIChatModel  # light, but loaded only when used, as by every loader

    return APIChatModel.from_spec(spec)
