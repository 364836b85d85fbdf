"""A text model answering bank items from their options alone, the question removed: what it gets
right that way comes from the options' surface form (the bank's cues), not from knowledge. Used by
the cue audit (`akb audit-bank --model`); items answered right are the ones to review."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from akb.data.items import MCQItem
from akb.io import read_jsonl
from akb.models import PACKAGED_ROOT, ModelSpec, load_model
from akb.probe.run import probe


def options_only_answers(model_entry: dict, items: list[MCQItem], packaged_root: str | Path = PACKAGED_ROOT,
                         batch_size: int = 32) -> dict[str, bool]:
    """Item id -> whether the model picked the key by option log-likelihood with an empty question."""
    model = load_model(ModelSpec.from_config(model_entry), Path(packaged_root))
    blank = [dataclasses.replace(item, question="") for item in items]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "options_only.jsonl"
        probe(model, blank, out, "loglik", batch_size)
        return {row["id"]: bool(row["correct"]) for row in read_jsonl(out)}
