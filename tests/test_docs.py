"""The documentation's commands run as written, and its links lead somewhere.

A fenced block in README.md or docs/*.md preceded by an HTML comment (invisible on GitHub)
`<!-- doctest: ... -->` is part of this test:

    <!-- doctest: file=my.yaml -->             the block's text is written to my.yaml
    <!-- doctest: run -->                      the block runs in bash (set -euo pipefail)
    <!-- doctest: run needs=hf-model:models/my-llm,clip:data/a.wav -->
                                               ...after putting a tiny random model / a short clip
                                               at those paths, standing in for the user's own

Each page runs in a sandbox of its own, blocks in page order, with the repository's Snakefile,
workflow/, config/ and profiles/ linked in, the venv's `akb` and `snakemake` first on PATH, and no
hub (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- doctest: (.*?) -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
LINKED = ("Snakefile", "workflow", "config", "profiles")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    action: str  # "run" or "file"
    path: str | None  # file=... target
    needs: tuple[str, ...]
    text: str


def _attributes(spec: str) -> dict[str, str]:
    attrs = {}
    for word in spec.split():
        key, _, value = word.partition("=")
        attrs[key] = value
    return attrs


def doc_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        attrs = _attributes(marker.group(1))
        assert i + 1 < len(lines) and FENCE.match(lines[i + 1]), f"{page.name}:{i + 1}: doctest marker not followed by a fence"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        action = "file" if "file" in attrs else "run"
        assert action == "file" or "run" in attrs, f"{page.name}:{i + 1}: unknown doctest marker {marker.group(1)!r}"
        needs = tuple(n for n in attrs.get("needs", "").split(",") if n)
        blocks.append(Block(page, i + 1, action, attrs.get("file"), needs, "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


def _tiny_hf_model(path: Path) -> None:
    from akb.models.tiny import build_tiny_model

    model, tokenizer = build_tiny_model("qwen2")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _clip(path: Path) -> None:
    """Half a second of a 440 Hz tone at 22.05 kHz, stereo: not what the models hear (16 kHz mono)."""
    t = np.arange(int(0.5 * 22050)) / 22050
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([tone, tone], axis=1), 22050)


NEEDS = {"hf-model": _tiny_hf_model, "clip": _clip}


def _provide(sandbox: Path, need: str) -> None:
    kind, _, rel = need.partition(":")
    target = sandbox / rel
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    NEEDS[kind](target)


def _sandbox(tmp_path: Path) -> Path:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


PAGES_WITH_TESTS = [p for p in PAGES if doc_blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_run(page, tmp_path):
    sandbox = _sandbox(tmp_path)
    for block in doc_blocks(page):
        for need in block.needs:
            _provide(sandbox, need)
        if block.action == "file":
            target = sandbox / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=sandbox, env=_env(),
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (
            f"{page.name}, line {block.line}: exit {done.returncode}\n{block.text}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}"
        )


def test_guides_have_runnable_commands():
    """The newcomer guides are tested by running them, not only rendered."""
    for name in ("probe-your-model.md", "audio-benchmarks.md"):
        assert any(b.action == "run" for b in doc_blocks(ROOT / "docs" / name)), name


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    """Every relative link of the docs leads to a file of the repository (and its anchor exists)."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
