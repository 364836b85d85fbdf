"""The experiment's variants of one backbone, and the models[] entries the workflow runs them as:
every stage's rules treat a variant like any declared model, so each is probed, answers from
captions and becomes an audio LLM by the very rules the study uses."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

DOSE_ROOT = "results/knowledge_dose"


@dataclass(frozen=True)
class Variant:
    name: str
    dose: int | None  # percent of the corpus's training facts; None: the control corpus
    seed: int | None  # None for dose 0, the backbone itself (nothing trained, nothing to seed)

    @property
    def control(self) -> bool:
        return self.dose is None

    @property
    def trained(self) -> bool:
        return self.dose != 0

    @property
    def label(self) -> str:
        what = "control corpus" if self.control else f"{self.dose}% of the facts"
        return what if self.seed is None else f"{what}, seed {self.seed}"


def settings_of(config: dict[str, Any]) -> dict[str, Any] | None:
    return (config.get("experiments") or {}).get("knowledge_dose")


def variants(settings: dict[str, Any]) -> list[Variant]:
    """Dose 0 once (the untouched backbone), each other dose and the control once per seed."""
    backbone, out = settings["backbone"], []
    for dose in sorted(settings["doses"]):
        if dose == 0:
            out.append(Variant(f"{backbone}-dose0", 0, None))
        else:
            out += [Variant(f"{backbone}-dose{dose}-s{seed}", dose, seed) for seed in settings["seeds"]]
    if settings["control"]:
        out += [Variant(f"{backbone}-control-s{seed}", None, seed) for seed in settings["seeds"]]
    return out


def backbone_dir(name: str) -> str:
    """Where a trained variant's merged weights are written (a transformers model folder)."""
    return f"{DOSE_ROOT}/backbones/{name}"


def variant_entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The models[] entry of every variant: the backbone's own (chat template, resources) renamed,
    answering in the experiment's probe mode; a trained one loads its merged folder (backend hf)."""
    settings = settings_of(config)
    if not settings:
        return []
    base = next((m for m in config["models"] if m["name"] == settings["backbone"]), None)
    if base is None:
        return []  # validate_config reports the unknown name
    entries = []
    for v in variants(settings):
        entry = copy.deepcopy(base)
        entry.update(name=v.name, display_name=f"{base.get('display_name') or base['name']} ({v.label})",
                     probe_mode=settings["probe_mode"])
        if settings.get("resources"):
            entry["resources"] = {**entry.get("resources", {}), **settings["resources"]}
        if v.trained:
            entry.update(backend="hf", source=backbone_dir(v.name))
            entry.pop("revision", None)  # a hub revision means nothing for the local folder
        entries.append(entry)
    return entries


def variant_of(settings: dict[str, Any], name: str) -> Variant:
    for v in variants(settings):
        if v.name == name:
            return v
    raise KeyError(f"knowledge_dose: no variant named {name!r}")
