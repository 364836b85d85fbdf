"""The SLURM profile on a real single-node cluster (tests/slurm/run_slurm_test.sh): opt-in, since
it installs Debian packages and starts daemons as root. Run with AKB_SLURM_TEST=1 (about 3 min)."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "slurm/run_slurm_test.sh"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("AKB_SLURM_TEST") != "1",
                       reason="real SLURM cluster test: set AKB_SLURM_TEST=1 (root, Debian; ~3 min)"),
]


def test_workflow_through_a_real_slurm_cluster_matches_a_local_run():
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output[-6000:]
    assert "PASSED: SLURM cluster test" in result.stdout
