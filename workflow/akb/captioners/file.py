"""The `file` captioner: captions supplied by the user (e.g. the paper's Gemini captions), read
from a JSONL file instead of computed from the audio.

One JSON object per line, with the caption's text under "caption" and what it describes under one of:

  * "id": the benchmark item's id (the item's `id` in the benchmark file); or
  * "audio" (or "audio_id" / "audio_path", the names MMAU and MMAR use): the clip, given as the
    path written in the benchmark file (e.g. "./test-mini-audios/x.wav"), the clip's resolved path,
    or its bare file name where no other clip of the benchmark has that name. A caption given by
    clip applies to every item that uses the clip.

When a line has both, "id" is used. Blank lines are skipped; any other key is ignored. The file is
UTF-8 text (a byte-order mark is allowed).

A caption file covers one benchmark; a config entry names one file per benchmark with a
"{benchmark}" placeholder in its path (`caption_file_path`), e.g. data/gemini/{benchmark}.jsonl.

The file must match the benchmark exactly, and is checked before anything is written: a malformed
line, a missing or empty field, a second caption for the same item, a caption for an item (or clip)
the benchmark does not have, and an item without a caption are all errors, each naming the file
(and line, field or a few of the ids concerned). Nothing is skipped silently.

`write_file_captions` publishes the same rows as `akb.cascade.caption.caption_items` ({id, captioner,
caption}, one per item, in the benchmark's order), so everything downstream reads either alike.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path, PurePath

import numpy as np

from akb.captioners import Captioner
from akb.data.items import MCQItem
from akb.io import iter_lines, write_jsonl

ID_KEY = "id"
CAPTION_KEY = "caption"
AUDIO_KEYS = ("audio", "audio_id", "audio_path")
SHOWN = 5  # ids quoted in an error that concerns many


class CaptionFileError(ValueError):
    """A caption file that does not fit the benchmark; the message names the file."""


class FileCaptioner(Captioner):
    """Captions looked up in a file by item id (or clip). It never sees the audio: `caption`
    cannot be used, and `akb.cascade.caption.caption_items` hands the whole benchmark to `write_captions`."""

    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def caption(self, audios: list[np.ndarray]) -> list[str]:
        raise TypeError(
            f"captioner {self.name}: captions come from {self.path} by item id, not from audio; "
            "use write_captions(items, out_path) (akb.cascade.caption.caption_items does)"
        )

    def captions(self, items: list[MCQItem]) -> dict[str, str]:
        """{item id: caption}, in the items' order; CaptionFileError unless the file fits them exactly."""
        return load_caption_file(self.path, items)

    def write_captions(self, items: list[MCQItem], out_path: str | Path) -> None:
        write_file_captions(self.path, items, out_path, self.name)


def caption_file_path(template: str | Path, benchmark: str) -> Path:
    """The caption file of one benchmark: "{benchmark}" in `template` replaced by its name (a path
    without the placeholder is used for every benchmark as it is)."""
    return Path(str(template).replace("{benchmark}", benchmark))


def write_file_captions(path: str | Path, items: list[MCQItem], out_path: str | Path, captioner: str = "file") -> None:
    """The captions file `caption_items` would write ({id, captioner, caption} per item, in item
    order), published atomically once the whole caption file has been checked."""
    captions = load_caption_file(path, items)
    write_jsonl(out_path, ({"id": it.id, "captioner": captioner, "caption": captions[it.id]} for it in items))


def load_caption_file(path: str | Path, items: list[MCQItem]) -> dict[str, str]:
    """{item id: caption} for every item, in the items' order (see the module docstring for the
    format). Raises CaptionFileError naming the file, and the line and field where there is one."""
    path = Path(path)
    if not path.is_file():
        raise CaptionFileError(f"{path}: caption file not found")
    item_ids = {it.id for it in items}
    clips = _ClipIndex(items)
    captions: dict[str, str] = {}
    line_of: dict[str, int] = {}  # item id -> line that captioned it
    unknown: list[str] = []  # 'value' (line n), for ids or clips not in the benchmark
    for lineno, line in iter_lines(path):  # an undecodable line is named by file and line
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaptionFileError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise CaptionFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
        caption = _caption(row, where)
        targets = _targets(row, where, item_ids, clips)
        if targets is None:
            unknown.append(f"{_key_value(row)!r} (line {lineno})")
            continue
        for item_id in targets:
            if item_id in captions:
                raise CaptionFileError(
                    f"{where}: a second caption for item {item_id!r} (first on line {line_of[item_id]})"
                )
            captions[item_id] = caption
            line_of[item_id] = lineno
    if unknown:
        raise CaptionFileError(
            f"{path}: {len(unknown)} caption{'s' if len(unknown) > 1 else ''} for items or clips not in the "
            f"benchmark, e.g. {', '.join(unknown[:SHOWN])}"
        )
    missing = [it.id for it in items if it.id not in captions]
    if missing:
        raise CaptionFileError(
            f"{path}: no caption for {len(missing)} of {len(items)} items, e.g. "
            f"{', '.join(repr(i) for i in missing[:SHOWN])}"
        )
    return {it.id: captions[it.id] for it in items}


def _caption(row: dict, where: str) -> str:
    if CAPTION_KEY not in row:
        raise CaptionFileError(f"{where}: missing field {CAPTION_KEY!r}")
    caption = row[CAPTION_KEY]
    if not isinstance(caption, str):
        raise CaptionFileError(f"{where}: field {CAPTION_KEY!r} must be a string, got {type(caption).__name__}")
    if not caption.strip():
        raise CaptionFileError(f"{where}: field {CAPTION_KEY!r} is empty")
    return caption.strip()


def _key_value(row: dict):
    return row[ID_KEY] if ID_KEY in row else next(row[k] for k in AUDIO_KEYS if k in row)


def _targets(row: dict, where: str, item_ids: set[str], clips: _ClipIndex) -> list[str] | None:
    """The items a line captions; None when its id or clip is not in the benchmark."""
    if ID_KEY in row:
        value = row[ID_KEY]
        # Benchmark ids are strings; a file written with numeric ids still names them.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise CaptionFileError(f"{where}: field {ID_KEY!r} must be a string, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise CaptionFileError(f"{where}: field {ID_KEY!r} is empty")
        return [value] if value in item_ids else None
    key = next((k for k in AUDIO_KEYS if k in row), None)
    if key is None:
        keys = ", ".join(map(repr, AUDIO_KEYS))
        raise CaptionFileError(f"{where}: missing field {ID_KEY!r} (or a clip path under {keys})")
    value = row[key]
    if not isinstance(value, str):
        raise CaptionFileError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise CaptionFileError(f"{where}: field {key!r} is empty")
    return clips.items_of(value.strip(), where, key)


class _ClipIndex:
    """Item ids by clip, reachable from each clip's benchmark-relative path, resolved path and
    (when unique in the benchmark) file name."""

    def __init__(self, items: list[MCQItem]):
        self.by_path: dict[str, list[str]] = {}
        self.by_name: dict[str, set[str]] = {}  # file name -> the clips (resolved paths) with it
        self.ids_of: dict[str, list[str]] = {}  # resolved clip path -> item ids
        for it in items:
            if not it.audio:
                continue
            self.ids_of.setdefault(it.audio, []).append(it.id)
            names = {_norm(it.audio)} | {_norm(str(it.extra[k])) for k in AUDIO_KEYS if it.extra.get(k)}
            for name in names:
                self.by_path.setdefault(name, [])
                if it.audio not in self.by_path[name]:
                    self.by_path[name].append(it.audio)
            self.by_name.setdefault(PurePath(it.audio).name, set()).add(it.audio)

    def items_of(self, value: str, where: str, key: str) -> list[str] | None:
        clips = self.by_path.get(_norm(value))
        if clips is None and "/" not in value.replace("\\", "/"):
            clips = sorted(self.by_name.get(value, ()))
            if len(clips) > 1:
                raise CaptionFileError(
                    f"{where}: field {key!r}: file name {value!r} is ambiguous: {len(clips)} clips of the "
                    f"benchmark have it (e.g. {', '.join(clips[:2])}); give the path written in the benchmark file"
                )
        if not clips:
            return None
        return [item_id for clip in clips for item_id in self.ids_of[clip]]


def _norm(path: str) -> str:
    """A path compared as text: forward slashes, no "./" or doubled separators."""
    return posixpath.normpath(path.replace("\\", "/"))


__all__ = ["CaptionFileError", "FileCaptioner", "caption_file_path", "load_caption_file", "write_file_captions"]
