"""Sharding: one probe, cascade or distillation run split into jobs whose merged output is the unsharded file.

probe() sorts items by length and cuts them into fixed batches. A row's numbers depend on the batch
it was computed in: padding width and batch shape change the floating-point reductions, so the
same item's option log-likelihoods can differ in the last bits between two batchings (measured with
the tiny models on CPU: up to 3e-5 for a third of the items in loglik mode; a greedy answer can
flip the same way where two tokens nearly tie). Shards therefore never regroup items: shard K of N
gets whole batches of the unsharded run, batches K, K+N, K+2N, ... (1-based) of its length-sorted
order. Round robin rather than contiguous blocks, because the order is longest first: each shard
gets an even mix of long and short batches, so the jobs take about the same time. probe() on a
shard's items (in file order) re-sorts and re-cuts them into exactly those batches and computes
every row as the unsharded run would; `merge_shards` puts the rows back in file order, byte for
byte the unsharded file. (As reproducible as the unsharded run itself: the same batches on the
same kind of device, dtype and thread count give the same numbers.)

Distillation (akb.lalm.distill) answers its requests in length-sorted batches of a fixed size too,
and is sharded the same way (`akb.lalm.distill.distill_shard`; grounded.distill.shards in the workflow)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from akb.data.items import MCQItem
from akb.io import atomic_path
from akb.models.base import LanguageModel
from akb.probe.run import MODES, most_choices, probe, probe_plan


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __post_init__(self):
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 1 <= K <= N")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` (1-based, as `--shard 2/3`), for argparse."""
    try:
        index, count = (int(part) for part in text.split("/"))
        return Shard(index, count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N (e.g. 2/3)") from None


def probe_batches(model: LanguageModel, items: list[MCQItem], mode: str, batch_size: int,
                  descriptions: dict[str, str] | None = None, style: str = "lettered") -> tuple[list[list[int]], int]:
    """The batches (indices into `items`, in run order) probe() cuts these items into, and its items
    per batch."""
    if mode not in MODES:
        raise ValueError(f"unknown probe mode {mode!r}; one of {MODES}")
    _, batches, per_batch = probe_plan(model, items, mode, batch_size, descriptions, style)
    return batches, per_batch


def shard_items(
    model: LanguageModel,
    items: list[MCQItem],
    shard: Shard,
    mode: str,
    batch_size: int,
    descriptions: dict[str, str] | None = None,
    style: str = "lettered",
) -> tuple[list[MCQItem], int]:
    """The items of one shard, in file order, and the batch size that makes probe() cut them into
    the unsharded run's batches. (In loglik mode probe() puts batch_size // (most options of any
    item) items in a batch; a shard without the items with most options needs a smaller batch_size
    for the same items per batch.)"""
    batches, per_batch = probe_batches(model, items, mode, batch_size, descriptions, style)
    subset = [items[i] for i in round_robin(batches, shard)]
    return subset, (batch_size if mode == "generate" else per_batch * most_choices(subset))


def probe_shard(
    model: LanguageModel,
    items: list[MCQItem],
    out_path: str | Path,
    mode: str = "generate",
    batch_size: int = 8,
    max_new_tokens: int = 32,
    descriptions: dict[str, str] | None = None,
    shard: Shard | None = None,
    style: str = "lettered",
    inputs: dict | None = None,
) -> None:
    """probe() on one shard's items (all of them when `shard` is None); resumable like probe()."""
    if shard is not None:
        items, batch_size = shard_items(model, items, shard, mode, batch_size, descriptions, style)
    probe(model, items, out_path, mode, batch_size, max_new_tokens, descriptions=descriptions, style=style,
          inputs=inputs)


def round_robin(batches: list[list[int]], shard: Shard) -> list[int]:
    """The indices in batches K, K+N, K+2N, ... (1-based) of `batches`, in file order."""
    return sorted(i for b, batch in enumerate(batches) if b % shard.count == shard.index - 1 for i in batch)


def shard_path(path: str, count: int, shard: int | str = "{shard}") -> str:
    """Where shard `shard` of `count` of the output `path` goes; `path` itself for one shard:
    a/{x}.jsonl -> a/shards/{x}.{shard}-of-{count}.jsonl (the default keeps a Snakemake wildcard)."""
    if count == 1:
        return path
    p = PurePosixPath(path)
    return str(p.with_name("shards") / f"{p.stem}.{shard}-of-{count}{p.suffix}")


def shard_paths(path: str, count: int) -> list[str]:
    """Every shard's path, in shard order."""
    return [shard_path(path, count, k) for k in range(1, count + 1)]


def _some(ids: Sequence[str], n: int = 10) -> str:
    shown = ", ".join(map(str, ids[:n]))
    return shown + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


def merge_shards(parts: Sequence[str | Path], order: Sequence[str], out_path: str | Path, key: str = "id") -> None:
    """Write the shards' rows to `out_path` (atomically) in `order`, the item ids in file order,
    after checking that every item has exactly one row across the parts. Rows are copied as written
    (not re-encoded), so the result is byte for byte what an unsharded run writes."""
    parts = list(parts)
    lines: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    for part in parts:
        with Path(part).open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{part}, line {lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict) or key not in row:
                    raise ValueError(f"{part}, line {lineno}: a row without {key!r}")
                sources.setdefault(row[key], []).append(f"{part}:{lineno}")
                lines.setdefault(row[key], line.rstrip("\n"))
    expected = set(order)
    problems = []
    if len(expected) != len(order):
        repeated = sorted(i for i, n in Counter(order).items() if n > 1)
        problems.append(f"the item list repeats {len(repeated)} id(s): {_some(repeated)}")
    missing = [i for i in order if i not in sources]
    if missing:
        problems.append(f"{len(missing)} item(s) in no shard: {_some(missing)}")
    repeated = [f"{i} ({', '.join(where)})" for i, where in sources.items() if len(where) > 1]
    if repeated:
        problems.append(f"{len(repeated)} item(s) with more than one row: {_some(repeated)}")
    unknown = [i for i in sources if i not in expected]
    if unknown:
        problems.append(f"{len(unknown)} row(s) for items not in the item list: {_some(unknown)}")
    if problems:
        raise ValueError(f"cannot merge {len(parts)} shard(s) into {out_path}:\n  " + "\n  ".join(problems))
    with atomic_path(out_path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for i in order:
            f.write(lines[i] + "\n")
