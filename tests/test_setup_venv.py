"""`.ci/setup-venv` installs the torch build that fits the machine: its choice of index, with stubs
for nvidia-smi, uname and the venv's pip (a fake .venv/bin/python that records its arguments);
nothing is installed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# The venv's python: `-c 'import torch'` fails (no torch yet) unless HAS_TORCH is set; `-m pip ...`
# appends its arguments to $CALLS and fails for --index-url when INDEX_DOWN is set.
FAKE_PYTHON = """
if [ "$1" = -c ]; then [ -n "$HAS_TORCH" ]; exit; fi
echo "${*:3}" >> "$CALLS"
if [ -n "$INDEX_DOWN" ]; then for a in "$@"; do [ "$a" = --index-url ] && exit 1; done; fi
exit 0
"""


def stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def setup(tmp_path):
    """Runs a copy of the script in a tree whose .venv holds the fake python; PATH holds only the
    stubs and the tools the script uses. Returns run(gpu=..., system=..., **env) -> pip calls."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci/setup-venv", tmp_path / ".ci/setup-venv")
    (tmp_path / ".venv/bin").mkdir(parents=True)
    stub(tmp_path / ".venv/bin", "python", FAKE_PYTHON)

    def run(gpu=None, system="Linux", **env):
        bin_dir = tmp_path / f"bin-{gpu}-{system}"
        if not bin_dir.exists():
            bin_dir.mkdir()
            os.symlink(shutil.which("dirname"), bin_dir / "dirname")
        stub(bin_dir, "uname", f"echo {system}")
        if gpu is not None:  # absent, or a driver that answers (True) or fails (False)
            stub(bin_dir, "nvidia-smi", "exit 0" if gpu else "echo 'NVIDIA-SMI has failed' >&2; exit 9")
        calls = tmp_path / "calls.txt"
        calls.unlink(missing_ok=True)
        result = subprocess.run(["/bin/bash", str(tmp_path / ".ci/setup-venv")], capture_output=True, text=True,
                                env={"PATH": str(bin_dir), "PYTHON": sys.executable, "CALLS": str(calls), **env},
                                timeout=60)
        pip = calls.read_text().splitlines() if calls.exists() else []
        return result, [line for line in pip if "--upgrade pip" not in line and "-e .[test]" not in line]

    return run


@pytest.mark.parametrize("gpu", [None, False])
def test_a_linux_machine_without_a_working_gpu_gets_the_cpu_build(setup, gpu):
    result, torch = setup(gpu=gpu)
    assert result.returncode == 0, result.stderr
    assert torch == [f"install --quiet --retries 1 --timeout 30 --index-url {CPU_INDEX} torch==2.13.0"]


@pytest.mark.parametrize("gpu, system", [(True, "Linux"), (None, "Darwin")])
def test_a_gpu_machine_and_macos_get_the_default_build(setup, gpu, system):
    result, torch = setup(gpu=gpu, system=system)
    assert result.returncode == 0, result.stderr
    assert torch == ["install --quiet torch==2.13.0"]


def test_an_unreachable_cpu_index_falls_back_to_the_default_index(setup):
    result, torch = setup(INDEX_DOWN="1")
    assert result.returncode == 0, result.stderr
    assert torch[-1] == "install --quiet torch==2.13.0" and CPU_INDEX in torch[0]
    assert "trying pip's default index" in result.stderr


def test_overrides_and_an_importable_torch(setup):
    _, torch = setup(gpu=True, TORCH_SPEC="torch>=2.6", TORCH_INDEX_URL="https://download.pytorch.org/whl/cu126")
    assert torch == ["install --quiet --retries 1 --timeout 30 --index-url https://download.pytorch.org/whl/cu126 "
                     "torch>=2.6"]
    _, torch = setup(TORCH_INDEX_URL="")  # empty: pip's default index, even without a GPU
    assert torch == ["install --quiet torch==2.13.0"]
    result, torch = setup(INDEX_DOWN="1", TORCH_INDEX_URL="https://example.invalid/whl")  # chosen: no fallback
    assert result.returncode != 0 and len(torch) == 1 and "TORCH_INDEX_URL" in result.stderr
    result, torch = setup(HAS_TORCH="1")  # kept: nothing installed over it
    assert result.returncode == 0 and torch == []
