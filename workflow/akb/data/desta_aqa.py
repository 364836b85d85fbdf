"""Seeds for the audio-grounded stage from DeSTA-AQA5M, with the user's own copies of its source audio.

DeSTA-AQA5M (Hugging Face `DeSTA-ntu/DeSTA-AQA5M-FROM-Llama3.1-8B-Instruct`, chunks `audio.{0..9}.jsonl`
and `speech.{0..9}.jsonl`) holds rows {id, dataset, seed_description, prompt, response, messages}: `id`
is the clip's path inside its source corpus, `dataset` that corpus (IEMOCAP, VCTK, AudioCaps, ... 50 in
all), and `messages` the chat DeSTA2.5 trains on, whose user turn carries
`audios: [{"audio": <path>, "text": <transcript or blank>}]`. The audio is not redistributed, so each
corpus's folder is configured (`audio_roots`: dataset name -> folder; null leaves a corpus out on
purpose) and every clip a seed names is checked (file present, header readable) before anything is
published.

Seed rows written: {id, audio, seed_description, prompt, transcript?, dataset}. `id` is
"<dataset>/<clip id>" (two corpora can hold the same relative path; a clip repeated with another
prompt gets "@2", "@3", ...), `audio` the clip's absolute path, `transcript` the row's own transcript
from `messages` when it has one ("" for DeSTA's blank " ": a clip without speech).

Budgets: `max_rows` (total) and `per_dataset_max` draw a stratified sample in one streaming pass. Each
row gets a key from a hash of (sample_seed, dataset, id, prompt), so the sample does not depend on how
the rows are chunked or ordered (JSONL or parquet, one file or ten); each dataset keeps the rows of
smallest key (at most min(its cap, max_rows) of them), and the total is shared among datasets in
proportion to their rows, capped datasets giving their unused share to the others. A sampled clip that
is missing or unreadable is replaced by the dataset's next row (on_missing: skip), so the budget is met
while the dataset has rows left. Without a budget the rows stream straight through.

The report (CSV and Markdown beside the seeds, and the log) has, per source dataset: rows in the source,
selected for the budget, clips checked, existing (file present), missing, unreadable (present but not
decodable audio), rows written, and a note (no audio root, left out, root folder not found, not in the
source).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from akb.audio import AudioError, audio_duration
from akb.data.bank import HF_PREFIX
from akb.io import atomic_path, decode_text

log = logging.getLogger(__name__)

# Data files of a folder or hub repo (not .json: a repo's metadata files are JSON too; a single .json
# file can still be given as the source).
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
MISSING, UNREADABLE = "missing", "unreadable"
REPORT_COLUMNS = ("dataset", "audio_root", "rows", "selected", "checked", "existing", "missing", "unreadable",
                  "written", "note")  # fmt: skip
LOGGED_PROBLEMS = 20  # per dataset in the log; the skipped list and the table have them all


@dataclass(frozen=True)
class DestaSettings:
    """grounded.distill.desta_aqa (config.schema.yaml)."""

    source: str
    audio_roots: dict[str, str | None]
    on_missing: str = "error"
    max_rows: int | None = None
    per_dataset_max: dict[str, int] = field(default_factory=dict)
    sample_seed: int = 0
    data_files: tuple[str, ...] | None = None
    revision: str | None = None

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> DestaSettings:
        if not block.get("source"):
            raise ValueError("grounded.distill.desta_aqa.source: give the hub id or a local file or folder")
        if block.get("on_missing", "error") not in ("error", "skip"):
            raise ValueError(f"grounded.distill.desta_aqa.on_missing: {block['on_missing']!r} is not error or skip")
        return cls(
            source=block["source"],
            audio_roots=dict(block.get("audio_roots") or {}),
            on_missing=block.get("on_missing", "error"),
            max_rows=block.get("max_rows"),
            per_dataset_max=dict(block.get("per_dataset_max") or {}),
            sample_seed=int(block.get("sample_seed", 0)),
            data_files=tuple(block["data_files"]) if block.get("data_files") else None,
            revision=block.get("revision"),
        )

    @property
    def sampling(self) -> bool:
        return self.max_rows is not None or bool(self.per_dataset_max)


# ---- reading the source: one data file at a time, so errors name the file and row ----


@dataclass(frozen=True)
class DataFile:
    name: str  # as errors name it: a local path or hf://<repo>/<file>
    builder: str  # the datasets loader: json or parquet
    data_file: str
    repo: str | None = None  # a hub dataset; None for a local file


def _builder(name: str) -> str:
    return "parquet" if name.endswith(".parquet") else "json"


def _is_data_file(name: str) -> bool:
    return name.endswith(DATA_SUFFIXES)


def _selected(names: list[str], patterns: tuple[str, ...] | None, source: str) -> list[str]:
    if patterns is None:
        return names
    chosen = [n for n in names if any(fnmatch(n, p) or fnmatch(Path(n).name, p) for p in patterns)]
    unmatched = [p for p in patterns if not any(fnmatch(n, p) or fnmatch(Path(n).name, p) for n in names)]
    if unmatched:
        raise FileNotFoundError(f"{source}: data_files {unmatched} match no data file; there are {names[:20]}")
    return chosen


def is_hub_source(source: str) -> bool:
    """hf://org/name, or org/name where no such local file or folder exists."""
    return source.startswith(HF_PREFIX) or (
        not Path(source).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", source) is not None
    )


def data_files(settings: DestaSettings) -> list[DataFile]:
    """The source's data files, in name order (audio.0.jsonl ... speech.9.jsonl)."""
    source = settings.source
    if is_hub_source(source):
        from huggingface_hub import HfApi

        repo = source.removeprefix(HF_PREFIX)
        try:
            names = HfApi().list_repo_files(repo, repo_type="dataset", revision=settings.revision)
        except Exception as e:  # offline, gated, missing: the hub's own message says which
            raise FileNotFoundError(f"{source}: cannot list the dataset's files on the Hugging Face hub "
                                    f"(and no local file or folder has that name): {e}") from None
        names = _selected(sorted(n for n in names if _is_data_file(n)), settings.data_files, source)
        return [DataFile(f"{HF_PREFIX}{repo}/{n}", _builder(n), n, repo) for n in names]
    path = Path(source)
    if path.is_dir():
        names = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and _is_data_file(p.name))
        names = _selected(names, settings.data_files, source)
        files = [path / n for n in names]
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{source}: DeSTA-AQA5M source not found (a hub id, a JSONL/parquet file or a folder)")
    if not files:
        raise FileNotFoundError(f"{source}: no JSONL or parquet file in this folder")
    return [DataFile(str(f), _builder(f.name), str(f)) for f in files]


def iter_rows(files: list[DataFile], revision: str | None = None) -> Iterator[tuple[str, dict]]:
    """(where, row) for every row, streamed by `datasets` file by file; `where` is "<file>, row <n>"."""
    import datasets

    for f in files:
        if f.repo is None and f.data_file.endswith(".jsonl"):
            _check_text_start(Path(f.data_file))
        n = 0
        try:  # loading reads the first rows already (to infer the columns): its errors too name no file
            if f.repo is not None:
                data = datasets.load_dataset(f.repo, data_files=[f.data_file], split="train", streaming=True,
                                             revision=revision)
            else:
                data = datasets.load_dataset(f.builder, data_files=[f.data_file], split="train", streaming=True)
            for n, row in enumerate(data, 1):
                yield f"{f.name}, row {n}", row
        except StopIteration:  # the json loader finds no first table: an empty file, which has no rows
            log.warning("%s: no rows (the file is empty)", f.name)
        except Exception as e:  # pyarrow's parse and cast errors name no file
            raise ValueError(f"{f.name}: cannot read after row {n} ({type(e).__name__}: {e})") from None


def _check_text_start(path: Path, size: int = 1 << 16) -> None:
    """The file's first lines decode as UTF-8 (akb.io.decode_text names the file, line and the
    likely cause): pyarrow would only say "JSON parse error: Invalid value" of a UTF-16 or binary file."""
    with path.open("rb") as f:
        head = f.read(size)
    if len(head) == size:  # only whole lines: the block may end inside a character
        head = head[: head.rfind(b"\n") + 1]
    decode_text(head, path)


# ---- one row ----


@dataclass(frozen=True)
class SourceRow:
    dataset: str
    clip_id: str
    seed_description: str
    prompt: str | None
    transcript: str | None


def text_field(row: dict, key: str, where: str, required: bool) -> str | None:
    """A row's text field; None when absent, null or blank (an error when `required`); any other
    type is an error naming `where` and the field."""
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"{where}: missing field '{key}'")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: field '{key}' is {type(value).__name__}, not text")
    return value


def _audio_entries(messages: Any, where: str) -> list[dict]:
    """The audio entries of a chat: each message's `audios` list (DeSTA2.5's layout), or content parts
    that carry an `audio` key."""
    if not isinstance(messages, list):
        raise ValueError(f"{where}: field 'messages' is {type(messages).__name__}, not a list of chat messages")
    entries = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"{where}: field 'messages[{i}]' is not a chat message object")
        audios = message.get("audios")
        if audios is not None:
            if not isinstance(audios, list) or not all(isinstance(a, dict) for a in audios):
                raise ValueError(f"{where}: field 'messages[{i}].audios' is not a list of {{audio, text}} objects")
            entries += audios
        if isinstance(message.get("content"), list):
            entries += [p for p in message["content"] if isinstance(p, dict) and "audio" in p]
    return entries


def transcript_of(messages: Any, clip_id: str, where: str) -> str | None:
    """The transcript (`text`) of the row's audio entry in `messages`: "" for a blank one (DeSTA's " "
    marks a clip without speech, whose transcript is known to be empty), None when there is none."""
    if messages is None:
        return None
    entries = _audio_entries(messages, where)
    if not entries:
        return None
    if len(entries) > 1:  # one clip per seed: the entry whose path ends with the row's id
        entries = [a for a in entries if str(a.get("audio") or "").replace("\\", "/").endswith(clip_id)]
        if len(entries) != 1:
            raise ValueError(f"{where}: field 'messages' holds several audio entries and not exactly one "
                             f"names the row's clip {clip_id!r}")
    text = entries[0].get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: field 'messages' audio entry 'text' is {type(text).__name__}, not text")
    return None if text is None else text.strip()


def parse_row(row: dict, where: str) -> SourceRow:
    clip_id = text_field(row, "id", where, required=True).strip()
    parts = Path(clip_id).parts
    if Path(clip_id).is_absolute() or ".." in parts:
        raise ValueError(f"{where}: field 'id' {clip_id!r} is not a path inside its corpus")
    return SourceRow(
        dataset=text_field(row, "dataset", where, required=True).strip(),
        clip_id=clip_id,
        seed_description=text_field(row, "seed_description", where, required=True),
        prompt=text_field(row, "prompt", where, required=False),
        transcript=transcript_of(row.get("messages"), clip_id, where),
    )


def sample_key(seed: int, row: SourceRow) -> int:
    """A row's place in the sample: a hash of its content, not of its position in the files."""
    text = f"{seed}\0{row.dataset}\0{row.clip_id}\0{row.prompt or ''}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


# ---- the budget ----


def allocate(counts: dict[str, int], caps: dict[str, int], max_rows: int | None) -> dict[str, int]:
    """Rows to take from each dataset: all (up to its cap) without max_rows; otherwise max_rows shared in
    proportion to each dataset's rows, a dataset whose share exceeds its cap (or rows) taking what it
    has and the rest shared again among the others; remainders go by largest fraction (then name)."""
    limit = {d: min(n, caps.get(d, n)) for d, n in counts.items()}
    if max_rows is None or sum(limit.values()) <= max_rows:
        return limit
    taken: dict[str, int] = {}
    active = {d for d in counts if limit[d] > 0}
    left = max_rows
    while True:
        total = sum(counts[d] for d in active)
        full = {d for d in active if left * counts[d] / total >= limit[d]}
        if not full:
            break
        for d in full:
            taken[d] = limit[d]
            left -= limit[d]
        active -= full
    total = sum(counts[d] for d in active)
    shares = {d: left * counts[d] / total for d in active}
    for d, share in shares.items():
        taken[d] = int(share)
    spare = left - sum(int(s) for s in shares.values())
    for d in sorted(active, key=lambda d: (-(shares[d] - int(shares[d])), d))[:spare]:
        taken[d] += 1
    return {d: taken.get(d, 0) for d in counts}


class _Smallest:
    """The `k` rows of smallest key seen so far (ties: the earlier row)."""

    def __init__(self, k: int | None):
        self.k, self.heap = k, []  # max-heap on (key, position) through negation

    def offer(self, key: int, position: int, row: SourceRow) -> None:
        item = (-key, -position, row)
        if self.k is None or len(self.heap) < self.k:
            heapq.heappush(self.heap, item)
        elif (key, position) < (-self.heap[0][0], -self.heap[0][1]):
            heapq.heapreplace(self.heap, item)

    def in_key_order(self) -> list[tuple[int, SourceRow]]:
        return [(-p, row) for _, p, row in sorted(self.heap, key=lambda t: (-t[0], -t[1]))]


# ---- clips and the report ----


def clip_path(root: str, clip_id: str) -> Path:
    """The clip under its corpus folder. When the named file is absent but a .wav of the same stem is
    there, that one: DeSTA's own loader does the same, as some corpora are kept converted to WAV."""
    path = Path(os.path.abspath(Path(root) / clip_id))
    if not path.exists() and path.suffix.lower() != ".wav" and path.with_suffix(".wav").exists():
        return path.with_suffix(".wav")
    return path


def clip_problem(path: Path) -> str | None:
    """None for a clip libsndfile can open (header only: cheap); else why not."""
    if not path.is_file():
        return MISSING
    try:
        audio_duration(path)
    except AudioError:
        return UNREADABLE
    return None


@dataclass
class DatasetReport:
    dataset: str
    audio_root: str | None = None
    rows: int = 0
    selected: int = 0
    checked: int = 0
    existing: int = 0
    missing: int = 0
    unreadable: int = 0
    written: int = 0
    note: str = ""

    def count(self, problem: str | None) -> None:
        self.checked += 1
        self.existing += problem != MISSING
        self.missing += problem == MISSING
        self.unreadable += problem == UNREADABLE
        self.written += problem is None

    def row(self) -> list:
        return [getattr(self, c) if getattr(self, c) is not None else "" for c in REPORT_COLUMNS]


@dataclass
class ConversionReport:
    source: str
    on_missing: str
    datasets: dict[str, DatasetReport]
    problems: list[dict] = field(default_factory=list)  # {dataset, id, path, problem}

    def rows(self) -> list[list]:
        reports = [self.datasets[d] for d in sorted(self.datasets)]
        total = DatasetReport("(all)")
        for r in reports:
            for c in REPORT_COLUMNS[2:-1]:
                setattr(total, c, getattr(total, c) + getattr(r, c))
        return [r.row() for r in reports] + [total.row()]

    @property
    def written(self) -> int:
        return sum(r.written for r in self.datasets.values())

    def csv_text(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        writer.writerows(self.rows())
        return out.getvalue()

    def table(self) -> str:
        """The per-dataset table in Markdown (also what the log shows)."""
        lines = ["| " + " | ".join(REPORT_COLUMNS) + " |", "|" + "---|" * len(REPORT_COLUMNS)]
        lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in self.rows()]
        return "\n".join(lines)

    def markdown(self) -> str:
        skipped = "\n".join(f"- {p['dataset']}: `{p['id']}` {p['problem']} ({p['path']})" for p in self.problems)
        return (f"# DeSTA-AQA5M seeds from {self.source}\n\n{self.table()}\n\n"
                f"existing: clip files present; unreadable: present but not decodable audio. "
                f"on_missing: {self.on_missing}.\n\n## Clips skipped ({len(self.problems)})\n\n"
                f"{skipped or 'none'}\n")

    def problems_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, ("dataset", "id", "path", "problem"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.problems)
        return out.getvalue()

    def log_problems(self) -> None:
        by_dataset: dict[str, list[dict]] = {}
        for p in self.problems:
            by_dataset.setdefault(p["dataset"], []).append(p)
        for dataset, problems in sorted(by_dataset.items()):
            for p in problems[:LOGGED_PROBLEMS]:
                log.warning("%s: clip %s %s: %s", dataset, p["id"], p["problem"], p["path"])
            if len(problems) > LOGGED_PROBLEMS:
                log.warning("%s: ... and %d more clip(s) missing or unreadable", dataset,
                            len(problems) - LOGGED_PROBLEMS)


class ClipsError(ValueError):
    """Sampled clips are missing or unreadable and on_missing is error: nothing was written."""


# ---- the conversion ----


def _id_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class _Writer:
    """Seed rows to an open file, with ids made unique. Only a 64-bit hash of each id written is kept,
    so millions of rows fit in memory; equal ids have equal hashes, so no id is ever written twice
    (a hash collision merely adds a suffix that was not needed)."""

    def __init__(self, f):
        self.f, self.seen = f, set()

    def _unique(self, base: str) -> str:
        candidate, n = base, 1
        while (h := _id_hash(candidate)) in self.seen:
            n += 1
            candidate = f"{base}@{n}"
        self.seen.add(h)
        return candidate

    def write(self, row: SourceRow, audio: Path) -> None:
        seed = {"id": self._unique(f"{row.dataset}/{row.clip_id}"), "audio": str(audio),
                "seed_description": row.seed_description}
        if row.prompt:
            seed["prompt"] = row.prompt
        if row.transcript is not None:  # "" too: no speech, so Whisper need not listen
            seed["transcript"] = row.transcript
        seed["dataset"] = row.dataset
        self.f.write(json.dumps(seed, ensure_ascii=False) + "\n")


def _reports(settings: DestaSettings) -> dict[str, DatasetReport]:
    reports = {d: DatasetReport(d, root) for d, root in settings.audio_roots.items()}
    for d, root in settings.audio_roots.items():
        if root is None:
            reports[d].note = "left out (audio root null)"
        elif not Path(root).is_dir():
            skipped = ": skipped" if settings.on_missing == "skip" else ""
            reports[d].note = f"root folder not found{skipped}"
    return reports


def convert(settings: DestaSettings, out: str | Path, report_dir: str | Path | None = None) -> ConversionReport:
    """Write the seed JSONL `out` and, beside it (or in `report_dir`), report.csv, report.md and
    skipped.csv. With on_missing: error, a missing or unreadable clip raises ClipsError once the whole
    table and the clips are logged, and nothing is written; so does a row whose dataset has no entry in
    audio_roots (at that row)."""
    out = Path(out)
    report_dir = Path(report_dir) if report_dir else out.parent
    files = data_files(settings)
    log.info("%s: %d data file(s): %s", settings.source, len(files), ", ".join(f.name for f in files[:20]))
    reports = _reports(settings)
    report = ConversionReport(settings.source, settings.on_missing, reports)
    # The folder each dataset's clips are read from; None: its rows are counted, not used. In skip
    # mode a root folder that does not exist leaves its dataset out (the note says so) instead of
    # taking a share of the budget that no clip can fill.
    roots = {d: root if root is not None and (settings.on_missing == "error" or Path(root).is_dir()) else None
             for d, root in settings.audio_roots.items()}
    caps = settings.per_dataset_max

    def bound(d: str) -> int | None:
        limits = [x for x in (caps.get(d), settings.max_rows) if x is not None]
        return min(limits) if limits else None

    # Datasets under a budget keep their rows of smallest key; the others stream straight through.
    kept = {d: _Smallest(bound(d)) for d, root in roots.items() if root is not None and bound(d) is not None}

    def check(row: SourceRow) -> Path | None:
        path = clip_path(roots[row.dataset], row.clip_id)
        problem = clip_problem(path)
        reports[row.dataset].count(problem)
        if problem:
            report.problems.append({"dataset": row.dataset, "id": row.clip_id, "path": str(path), "problem": problem})
            return None
        return path

    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        writer = _Writer(f)
        position = 0
        for position, (where, raw) in enumerate(iter_rows(files, settings.revision), 1):
            if position % 100_000 == 0:
                log.info("%d rows read, %d seeds written so far", position, report.written)
            row = parse_row(raw, where)
            if row.dataset not in roots:
                if settings.on_missing == "error":
                    raise ValueError(f"{where}: field 'dataset': {row.dataset!r} has no folder in "
                                     f"grounded.distill.desta_aqa.audio_roots (give its folder, or null to leave "
                                     f"it out; or set on_missing: skip)")
                reports[row.dataset] = DatasetReport(row.dataset, note="no audio root: skipped")
                roots[row.dataset] = None
            reports[row.dataset].rows += 1
            if roots[row.dataset] is None:
                continue
            if row.dataset in kept:
                kept[row.dataset].offer(sample_key(settings.sample_seed, row), position, row)
                continue
            reports[row.dataset].selected += 1
            if path := check(row):
                writer.write(row, path)
        log.info("%d rows read from %s", position, settings.source)
        if position == 0:
            raise ValueError(f"{settings.source}: no rows (every data file is empty)")
        # max_rows is shared among every dataset in use; caps alone concern the capped datasets.
        in_use = [d for d, root in roots.items() if root is not None] if settings.max_rows is not None else kept
        targets = allocate({d: reports[d].rows for d in in_use}, caps, settings.max_rows)
        chosen = []
        for d in sorted(kept):
            reports[d].selected = targets[d]
            for position, row in kept[d].in_key_order():
                # Skip mode replaces a bad clip by the next row; error mode checks the selection alone.
                done = reports[d].written if settings.on_missing == "skip" else reports[d].checked
                if done == targets[d]:
                    break
                if path := check(row):
                    chosen.append((position, row, path))
        for _, row, path in sorted(chosen, key=lambda t: t[0]):  # in the source's order
            writer.write(row, path)
        for d in caps:
            if reports.get(d) is None or reports[d].rows == 0:
                log.warning("per_dataset_max names %r, which has no rows in the source", d)
        for r in reports.values():
            if r.rows == 0 and not r.note:
                r.note = "not in the source"
        log.info("per source dataset:\n%s", report.table())
        report.log_problems()
        if report.problems and settings.on_missing == "error":
            raise ClipsError(f"{settings.source}: {len(report.problems)} clip(s) missing or unreadable (listed "
                             f"above, with the table); nothing written. Fix grounded.distill.desta_aqa.audio_roots, "
                             f"or set on_missing: skip to leave them out")
        if report.written == 0:
            raise ValueError(f"{settings.source}: no seed written (table above): no row has a readable clip "
                             f"under grounded.distill.desta_aqa.audio_roots")
    for name, text in (("report.csv", report.csv_text()), ("report.md", report.markdown()),
                       ("skipped.csv", report.problems_csv())):
        with atomic_path(report_dir / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    log.info("%d seeds written to %s (%d clip(s) skipped)", report.written, out, len(report.problems))
    return report
