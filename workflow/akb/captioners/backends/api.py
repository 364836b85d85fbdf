"""The `api` captioner: an audio model behind an OpenAI-compatible endpoint (akb.captioners.api)."""

from __future__ import annotations

from akb.captioners import Captioner, register


@register("api")
def api_captioner(entry: dict) -> Captioner:
    from akb.captioners.api import APICaptioner

    return APICaptioner.from_entry(entry)
