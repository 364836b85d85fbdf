"""File helpers shared by every stage: atomic publication and resumable per-item JSONL."""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)
# Test hook, never for production runs: seconds to pause after each batch a resumable job appends,
# so that tests/test_kill_matrix.py can kill a job of tiny models between two batches on a busy machine.
SLOW_BATCH_S = float(os.environ.get("AKB_TEST_SLOW_BATCH_S") or 0)


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
        with naming_full_disk(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Write errors that mean "no room": the disk (or quota) is full, or a file size limit was reached.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextmanager
def naming_full_disk(path: str | Path) -> Iterator[None]:
    """A full disk shows as an OSError without a file name (a failed write() has none): give it
    `path`, so the error says which output could not be written."""
    try:
        yield
    except OSError as e:
        if e.errno in DISK_FULL and not e.filename:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


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


def outside_root(root: str | Path, relative: str) -> Path | None:
    """Where `relative` (a path written in a data file) really leads when it leaves `root`, else
    None: an absolute path, '..' or a symlink pointing out. A downloaded benchmark file is data, and
    must not make a job read (and write into its outputs) any file the user can read."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    return None if target.is_relative_to(base) else target


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in blocks (model weights need not fit in memory twice)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(path: str | Path) -> str:
    """Digest of a file, or of a folder's files (names and contents): a trained checkpoint."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    return digest({str(f.relative_to(path)): sha256_file(f) for f in sorted(path.rglob("*")) if f.is_file()})


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


NUL = "\x00"


def decode_text(data: bytes, path: str | Path, first_line: int = 1) -> str:
    """`data` (a whole file, or its line `first_line`) as UTF-8 text. Every data file the workflow
    reads is UTF-8; a leading byte-order mark is allowed (Excel and Notepad write one). Anything
    else is a ValueError naming the file and line, where Python's own UnicodeDecodeError names
    neither: UTF-16 (a BOM, or NUL bytes), another 8-bit encoding such as Latin-1 (which cannot be
    told from others, so is never guessed), or a binary file."""

    def where(text_before: str | bytes) -> str:
        newline = "\n" if isinstance(text_before, str) else b"\n"
        return f"{path}, line {first_line + text_before.count(newline)}"

    if first_line == 1 and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{path}: UTF-16 text; save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where(data[: e.start])}: not UTF-8 text (byte 0x{data[e.start]:02x}: another encoding "
                         "such as Latin-1, or a binary file); save the file as UTF-8") from None
    if NUL in text:  # valid UTF-8, but no text file holds NUL: UTF-16 without a BOM, or binary
        raise ValueError(f"{where(text[: text.index(NUL)])}: NUL bytes: not UTF-8 text (UTF-16 or a binary file)")
    return text


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content; a decoding problem names the file and line (`decode_text`)."""
    return decode_text(Path(path).read_bytes(), path)


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 text file, read one line at a time; a decoding
    problem names the file and line (`decode_text`)."""
    with Path(path).open("rb") as f:
        for lineno, line in enumerate(f, 1):
            yield lineno, decode_text(line, path, lineno)


def parse_json(text: str, path: str | Path) -> Any:
    """`text`, read from `path`, as JSON; a syntax error names the file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a syntax or decoding error names the file and line."""
    return parse_json(read_text(path), path)


def read_json_object(path: str | Path) -> dict:
    """A JSON file that must hold one object (a config.json, a recipe); anything else names the file."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each non-blank line of a JSONL file, so that checks of a record
    can name its line; a malformed or undecodable line is named by file and line."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {lineno}: not valid JSON ({e.msg})") from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file, naming the file and line of any malformed record (or undecodable text)."""
    return [row for _, row in iter_jsonl(path)]


def digest(obj: Any) -> str:
    """Hex sha256 of a JSON-able value (keys sorted), for fingerprints of inputs held in memory: an
    item list, a dict of captions or transcripts, a config block."""
    canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def as_stored(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint as it reads back from a file (a JSON round trip turns tuples into lists), so a
    fresh one compares equal to its stored copy."""
    return json.loads(json.dumps(fingerprint, sort_keys=True, ensure_ascii=False, default=str))


def set_aside_if_stale(path: Path, stored: Any, fingerprint: dict[str, Any], where: str = "it") -> bool:
    """Whether the resumable state at `path` (a partial file, a training state) belongs to another
    run: its `stored` fingerprint differs from this run's, or there is none. Such a state is renamed
    to `<path>.stale` (replacing an older one), with a warning naming the fields that differ, so
    the run starts afresh instead of mixing its results with another run's."""
    if stored == fingerprint:
        return False
    stale = path.with_name(path.name + ".stale")
    if isinstance(stored, dict):
        fields = sorted(k for k in stored.keys() | fingerprint.keys() if stored.get(k) != fingerprint.get(k))
        why = f"it was written with other {', '.join(fields)}"
    else:
        why = f"{where} has no fingerprint of the run that wrote it"
    log.warning("%s is not resumed: %s; moved to %s, starting afresh", path, why, stale.name)
    os.replace(path, stale)
    return True


class PartialJsonl:
    """Append-only record of finished items, so a killed job resumes where it stopped.

    Rows are appended and flushed batch by batch to `<final>.partial`. On restart the rows already
    there are loaded (a torn last line from a kill is dropped); `publish` writes the final file in
    the requested order and removes the partial file.

    `fingerprint` is what the rows depend on (model, mode, prompt and generation settings, a digest
    of the inputs); it is written to `<final>.partial.fingerprint.json` before the first row. A
    partial file whose fingerprint differs, or that has none, holds rows of another run: merging
    them would mix two runs in one result file, so it is moved aside to `<partial>.stale` (with a
    warning naming the fields that differ) and the run starts afresh."""

    def __init__(self, final_path: str | Path, fingerprint: dict[str, Any], key: str = "id"):
        self.final_path = Path(final_path)
        self.path = self.final_path.with_name(self.final_path.name + ".partial")
        self.fingerprint_path = self.path.with_name(self.path.name + ".fingerprint.json")
        self.fingerprint = as_stored(fingerprint)
        self.key = key
        self.rows: dict[str, dict] = {}
        if self.path.exists() and self._same_run():
            self._load()
            log.info("resuming from %s: %d items already done", self.path, len(self.rows))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.fingerprint_path, self.fingerprint)

    def _same_run(self) -> bool:
        """True when the partial file was written by a run with this fingerprint; otherwise it is
        set aside (see set_aside_if_stale)."""
        try:
            stored = json.loads(self.fingerprint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        return not set_aside_if_stale(self.path, stored, self.fingerprint, f"its {self.fingerprint_path.name}")

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
        with naming_full_disk(self.path), self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows[row[self.key]] = row
            f.flush()
            os.fsync(f.fileno())
        if SLOW_BATCH_S:
            time.sleep(SLOW_BATCH_S)

    def publish(self, order: list[str]) -> None:
        missing = [k for k in order if k not in self.rows]
        if missing:
            raise RuntimeError(f"{self.path}: {len(missing)} items still missing, e.g. {missing[:3]}")
        write_jsonl(self.final_path, (self.rows[k] for k in order))
        self.path.unlink(missing_ok=True)  # missing when there were no items at all
        self.fingerprint_path.unlink(missing_ok=True)
