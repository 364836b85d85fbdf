"""Release a verified bank: checked by the bank validator, written under a versioned name with a
manifest holding its sha256, so a probe run can name exactly which bank it answered."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from akb.data.bank import check_items, load_bank
from akb.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)


def release_bank(bank: str | Path, name: str, version: str, out: str | Path, manifest: str | Path,
                 strict: bool = False) -> dict[str, Any]:
    """Validate `bank` as `akb validate-bank` does (errors always stop the release; warnings, e.g.
    letter balance after reviewers rejected items, stop it only when `strict`), copy it to `out`
    and write the manifest (name, version, sha256, counts, the validator's findings)."""
    items = load_bank(str(bank))  # stops on errors: duplicate ids, invalid answers, repeated options
    if not items:
        raise ValueError(f"{bank}: no verified items to release")
    problems = check_items(items, n_options=4)
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity != "error"]
    if errors or (strict and warnings):
        raise ValueError(f"{bank}: not released, the validator found:\n  " + "\n  ".join(errors + warnings))
    with atomic_path(out) as tmp:
        shutil.copyfile(bank, tmp)
    info = {
        "name": name, "version": version, "file": Path(out).name, "sha256": sha256_file(out),
        "items": len(items), "categories": sorted({it.category for it in items}),
        "subcategories": len({(it.category, it.subcategory) for it in items}),
        "generators": sorted({str(it.extra.get("provenance", {}).get("generator")) for it in items}),
        "validation": {"errors": errors, "warnings": warnings},
    }
    write_json(manifest, info)
    log.info("released %s %s: %d items, sha256 %s (%d warning(s))", name, version, len(items), info["sha256"],
             len(warnings))
    return info


def verify_release(manifest: str | Path) -> bool:
    """Whether the released file next to the manifest still has the recorded checksum."""
    info = json.loads(Path(manifest).read_text(encoding="utf-8"))
    return sha256_file(Path(manifest).parent / info["file"]) == info["sha256"]
