"""What produced a run's results: `akb provenance` writes results/provenance.json once every other
target of the workflow is done (and again whenever one of them changes).

It records the code (git commit, and whether tracked files differ from it), the configuration (a
digest of the resolved config), the software (package versions, platform), torch's threads and
device, and the data the numbers rest on (the synthetic suite's digest and the speech engine its
metadata names, the bank's digest). No host or user name: the file is meant to travel with results.

Software and device are those of the process that writes the file: the workflow's own environment.
On a cluster, model jobs run on other nodes, each with the device its log names.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from akb.io import digest, sha256_file, write_json

UNKNOWN = "unknown"
# Distributions whose versions are recorded, besides python and akb itself.
PACKAGES = ("torch", "transformers", "peft", "snakemake", "numpy", "scipy", "librosa", "soundfile")
# The checkout the library was loaded from (workflow/akb/provenance.py -> the repository root).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def config_digest(config: dict[str, Any]) -> str:
    """sha256 of the resolved config as canonical JSON (keys sorted, no whitespace)."""
    return digest(config)


def git_state(repo: str | Path = SOURCE_ROOT) -> dict[str, Any]:
    """{"commit", "dirty"} of the git checkout whose root is `repo`; both "unknown" without git, or
    when `repo` is not a checkout's root (a copy unpacked inside some other repository must not
    report that repository's commit). Dirty: tracked files differ from the commit; untracked ones
    (results, resources) do not count."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != Path(repo).resolve():
            return {"commit": UNKNOWN, "dirty": UNKNOWN}
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, no commit yet
        return {"commit": UNKNOWN, "dirty": UNKNOWN}


def package_versions() -> dict[str, str | None]:
    """Versions of python, the packages in PACKAGES (None when not installed) and akb."""
    import akb

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["akb"] = akb.__version__
    return versions


def torch_state() -> dict[str, Any]:
    """torch's CPU threads and the device a model job here would use (None without torch)."""
    try:
        import torch
    except ImportError:
        return {"threads": None, "interop_threads": None, "cuda_available": None, "cuda_version": None,
                "device_count": 0, "device": None}
    cuda = torch.cuda.is_available()
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "device_count": torch.cuda.device_count() if cuda else 0,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    }


def suite_state(suite_dir: str | Path, speech_engine: str | None) -> dict[str, Any]:
    """The synthetic suite as written: its digest, the configured engine, the engines its speech
    items name (`metadata.synthesis`; what `auto` actually chose), and its items per split."""
    from akb.data.synthetic import SPLITS, load_suite, speech_synthesis, suite_digest

    suite_dir = Path(suite_dir)
    splits = {s: load_suite(suite_dir / f"{s}.json") for s in SPLITS if (suite_dir / f"{s}.json").is_file()}
    return {
        "path": str(suite_dir),
        "digest": suite_digest(suite_dir),  # raises, naming the folder, when it holds no suite
        "speech_engine": speech_engine,
        "speech_synthesis": speech_synthesis([r for records in splits.values() for r in records]),
        "items": {split: len(records) for split, records in splits.items()},
    }


def bank_state(bank_file: str | Path) -> dict[str, Any]:
    if not Path(bank_file).is_file():
        raise FileNotFoundError(f"{bank_file}: bank file not found")
    return {"path": str(bank_file), "sha256": sha256_file(bank_file)}


def provenance(config: dict[str, Any], *, repo: str | Path | None = None, suite_dir: str | Path | None = None,
               bank_file: str | Path | None = None) -> dict[str, Any]:
    """The provenance record of a run with the resolved `config` (see the module docstring); `repo`
    defaults to the checkout akb was loaded from."""
    data: dict[str, Any] = {}
    if suite_dir is not None:
        data["synthetic"] = suite_state(suite_dir, config.get("synthetic", {}).get("speech_engine"))
    if bank_file is not None:
        data["bank"] = bank_state(bank_file)
    return {
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(repo or SOURCE_ROOT),
        "config_digest": config_digest(config),
        "packages": package_versions(),
        "platform": platform.platform(),
        "torch": torch_state(),
        "data": data,
    }


def write_provenance(out: str | Path, config: dict[str, Any], **sources: Any) -> dict[str, Any]:
    record = provenance(config, **sources)
    write_json(out, record)
    return record
