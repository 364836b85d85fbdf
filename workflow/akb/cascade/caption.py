"""Caption every clip of an audio benchmark, resumably: the first half of the cascade."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from akb.audio import items_label, load_clip
from akb.captioners import Captioner
from akb.data.items import MCQItem
from akb.io import PartialJsonl, digest, read_jsonl


def caption_items(captioner: Captioner, items: list[MCQItem], out_path: str | Path, batch_size: int = 8,
                  entry: dict | None = None) -> None:
    """One row per clip ({id, captioner, caption}) in `out_path`, resuming from its partial file.
    Clips shared by several items are captioned once. A `file` captioner's captions are looked up,
    not computed: they are checked against the items and written in one go. `entry` (the
    captioner's config entry) goes into the partial file's fingerprint (akb.io.PartialJsonl): rows
    of another captioner setting are never resumed."""
    from akb.captioners.file import FileCaptioner

    if isinstance(captioner, FileCaptioner):
        captioner.write_captions(items, out_path)
        return
    ids_of: dict[str, list[str]] = {}  # clip -> items that use it, clips in first-seen order
    for item in items:
        ids_of.setdefault(item.audio, []).append(item.id)
    settings = {k: v for k, v in (entry or {}).items() if k != "resources"}  # not where it runs
    partial = PartialJsonl(out_path, {"captioner": captioner.name, "entry": digest(settings), "clips": digest(ids_of)})
    clips = list(ids_of)
    todo = [clip for clip in clips if not all(partial.done(i) for i in ids_of[clip])]
    with tqdm(total=len(clips), initial=len(clips) - len(todo), desc=f"caption {captioner.name}", unit="clip") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            audios = [load_clip(clip, ids_of[clip], captioner.sample_rate) for clip in batch]
            captions = captioner.caption_named(audios, [_clip_name(clip, ids_of[clip]) for clip in batch])
            partial.append(
                {"id": item_id, "captioner": captioner.name, "caption": caption}
                for clip, caption in zip(batch, captions)
                for item_id in ids_of[clip]
            )
            bar.update(len(batch))
    partial.publish([item.id for item in items])


def _clip_name(clip: str, item_ids: list[str]) -> str:
    """How errors about a clip name it: its path and the items that use it."""
    return f"{clip} ({items_label(item_ids)})"


def read_captions(path: str | Path) -> dict[str, str]:
    return {row["id"]: row["caption"] for row in read_jsonl(path)}
