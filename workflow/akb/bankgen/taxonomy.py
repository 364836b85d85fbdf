"""The two-level taxonomy that guides generation: categories, and subcategories with a scope each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


from akb.data.bank import TAXONOMY
from akb.io import read_yaml


@dataclass(frozen=True)
class Subcategory:
    category: str
    id: str  # path-safe
    name: str
    scope: str  # what its questions cover, e.g. "Italian tempo and dynamic markings, accelerando"

    @property
    def aspects(self) -> list[str]:
        """The scope cut at commas, colons and semicolons: one focus per request, so requests differ."""
        parts = [p.strip() for p in re.split(r"[,;:]", self.scope)]
        return [p for p in parts if p] or [self.name]


def resolve_taxonomy(path: str) -> Path:
    """`builtin` names the study's taxonomy (workflow/data/akb_taxonomy.yaml)."""
    return TAXONOMY if path == "builtin" else Path(path)


def load_taxonomy(path: str | Path, only: list[str] | None = None) -> list[Subcategory]:
    """Subcategories in file order; `only` keeps those ids (each must exist)."""
    path = resolve_taxonomy(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: taxonomy file not found")
    data = read_yaml(path)
    subcategories = []
    for i, category in enumerate(data.get("categories") or []):
        if not isinstance(category, dict) or not category.get("name"):
            raise ValueError(f"{path}: categories[{i}] needs a name")
        for j, sub in enumerate(category.get("subcategories") or []):
            missing = [k for k in ("id", "name", "scope") if not isinstance(sub, dict) or not sub.get(k)]
            if missing:
                raise ValueError(f"{path}: categories[{i}].subcategories[{j}] is missing {missing}")
            subcategories.append(Subcategory(category["name"], str(sub["id"]), str(sub["name"]), str(sub["scope"])))
    ids = [s.id for s in subcategories]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path}: subcategory id(s) used twice: {duplicated}")
    if only is not None:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise ValueError(f"{path}: unknown subcategory id(s) {unknown}")
        subcategories = [s for s in subcategories if s.id in only]
    if not subcategories:
        raise ValueError(f"{path}: no subcategories")
    return subcategories
