"""`akb audit-bank`: the cue audit of akb.data.cues run on a bank file, with the embedding of
bankgen's near-duplicate check and, optionally, real models answering from the options alone."""

from __future__ import annotations

from pathlib import Path

from akb.bankgen.embed import load_embedder
from akb.data.bank import load_bank
from akb.data.cues import Audit, audit_bank
from akb.data.items import MCQItem
from akb.models import PACKAGED_ROOT


def audit_bank_file(source: str, fmt: str = "auto", columns: dict | None = None, split: str = "test", *,
                    embedding: str = "none", models: list[dict] = (), packaged_root: str | Path = PACKAGED_ROOT,
                    **thresholds) -> tuple[list[MCQItem], Audit]:
    """(items, audit) of the bank at `source`; `embedding` "none" skips near-duplicates, each of
    `models` (config entries) answers from the options alone; `thresholds` as `audit_bank`'s."""
    from akb.probe.options_only import options_only_answers

    items = load_bank(source, fmt, columns or {}, split)
    embed = load_embedder(embedding, packaged_root).embed if embedding != "none" else None
    answered = {f"options-only {m['name']}": options_only_answers(m, items, packaged_root) for m in models}
    return items, audit_bank(items, embed=embed, answered=answered, **thresholds)
