"""The `dsp` captioner: signal features only, offline (akb.captioners.dsp)."""

from __future__ import annotations

from akb.captioners import Captioner, register


@register("dsp")
def dsp_captioner(entry: dict) -> Captioner:
    from akb.captioners.dsp import DspCaptioner

    return DspCaptioner()
