"""Environment that Snakemake jobs inherit, so every `python -m akb` finds the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def prepare_job_environment(workflow_dir: Path) -> None:
    """Make the library importable from the clone (installed or not, conda jobs included), and
    let jobs run `python` from the environment Snakemake runs in; a conda job's environment is put
    before it by Snakemake, so its own python wins there."""
    paths = [str(workflow_dir), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
