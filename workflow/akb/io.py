"""File helpers shared by every stage: atomic publication and resumable per-item JSONL."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block succeeds.

    Readers (and Snakemake) therefore never see a half-written output that looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to `path`; it replaces `path` only if the block succeeds,
    so a folder of many files (clips, an extracted archive) is never seen half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in blocks (model weights need not fit in memory twice)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content ({} when empty); a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file, naming the file and line of any malformed record."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {lineno}: not valid JSON ({e.msg})") from None
    return rows


class PartialJsonl:
    """Append-only record of finished items, so a killed job resumes where it stopped.

    Rows are appended and flushed batch by batch to `<final>.partial`. On restart the rows already
    there are loaded (a torn last line from a kill is dropped); `publish` writes the final file in
    the requested order and removes the partial file."""

    def __init__(self, final_path: str | Path, key: str = "id"):
        self.final_path = Path(final_path)
        self.path = self.final_path.with_name(self.final_path.name + ".partial")
        self.key = key
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            self._load()
            log.info("resuming from %s: %d items already done", self.path, len(self.rows))

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            lines = f.readlines()
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn write from an interrupted job; the item is simply redone
            self.rows[row[self.key]] = row
        # Rewrite without torn lines so later appends start on a clean line.
        with atomic_path(self.path) as tmp, tmp.open("w", encoding="utf-8") as f:
            for row in self.rows.values():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def done(self, key: str) -> bool:
        return key in self.rows

    def append(self, rows: Iterable[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows[row[self.key]] = row
            f.flush()
            os.fsync(f.fileno())

    def publish(self, order: list[str]) -> None:
        missing = [k for k in order if k not in self.rows]
        if missing:
            raise RuntimeError(f"{self.path}: {len(missing)} items still missing, e.g. {missing[:3]}")
        write_jsonl(self.final_path, (self.rows[k] for k in order))
        self.path.unlink()
