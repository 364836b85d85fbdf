"""A job's environment: what Snakemake jobs inherit, so every `python -m akb` finds the library, and
the CPU threads a job's torch uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def prepare_job_environment(workflow_dir: Path) -> None:
    """Make the library importable from the clone (installed or not, conda jobs included), and
    let jobs run `python` from the environment Snakemake runs in; a conda job's environment is put
    before it by Snakemake, so its own python wins there. AKB_REPO names the clone for the conda
    envs' post-deploy script (envs/post-deploy.sh), which installs it into each new env."""
    os.environ["AKB_REPO"] = str(Path(workflow_dir).resolve().parent)
    paths = [str(workflow_dir), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def set_threads(threads: int | None) -> None:
    """torch's CPU threads for this job (the rule's `threads`); torch is imported only when asked."""
    if threads:
        import torch

        torch.set_num_threads(threads)
