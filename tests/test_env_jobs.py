"""Each conda env file runs its rules (tests/envs/run_env_test.py): opt-in, since it builds four
venvs from PyPI (about 2 GB, cached by uv) and runs a tiny workflow (69 jobs), then 26 jobs in the
venvs. Run with AKB_ENV_TEST=1 (several minutes)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "envs/run_env_test.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("AKB_ENV_TEST") != "1",
                       reason="builds every conda env's packages from PyPI: set AKB_ENV_TEST=1 (several minutes)"),
]


def test_every_rule_runs_in_the_env_its_rule_names():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output[-6000:]
    assert "PASSED: env test" in result.stdout
