"""The `file` captioner: captions supplied in a JSONL file, one per item or clip (akb.captioners.file)."""

from __future__ import annotations

from akb.captioners import Captioner, register


@register("file")
def file_captioner(entry: dict) -> Captioner:
    from akb.captioners.file import FileCaptioner

    return FileCaptioner(entry["path"])
