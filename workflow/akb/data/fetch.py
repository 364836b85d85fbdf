"""Fetching the audio benchmarks (MMAU test-mini, MMAR) from their public releases.

A fetch leaves, under `out_dir`, the layout the loader (`akb.data.audio_bench`) reads: the metadata
file, the folder its clip paths point into, and `fetch-manifest.json`, written last, that records
what was fetched, from where (the hub commit it resolved to) and the sha256 of every download.

Where the files come from (looked up in the projects' READMEs and in public code that downloads
them; see the module's releases below):
  * MMAU test-mini v05.15.25. Metadata: `mmau-test-mini.json` in the MMAU GitHub repository
    (Sakshi113/MMAU, Apache-2.0), pinned by its sha256. Audio: the Hugging Face dataset
    gamma-lab-umd/MMAU-test-mini stores the 1,000 clips inside `test_mini.parquet` (column
    `context`, the clip's file bytes; the item id in the JSON column `other_attributes`); each
    row's bytes are written as `test-mini-audios/<id>.wav`, as the official tarball
    (`test-mini-audios.tar.gz`, distributed from Google Drive) lays them out.
  * MMAR. Metadata: `MMAR-meta.jsonl` in the MMAR GitHub repository (ddlBoJack/MMAR), pinned by
    its sha256: the hub's `MMAR-meta.json` is reported to lack the newer answer hints (thinking,
    cue, rubric) that the published reference copy holds. Audio: `mmar-audio.tar.gz` in the
    Hugging Face dataset BoJack/MMAR, whose clips unpack as `audio/<id>.wav`.

Only the clips the metadata names are taken from an archive, each written to the path the
metadata gives it (never to the member's own path), so an archive's extra files or folder prefix
do not matter; an archive holding an absolute or `..` member is refused whole.

Downloads use huggingface_hub's HTTP stack (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE honoured) into
`out_dir/.downloads/<file>.part`, which a rerun resumes with an HTTP Range request; 429/5xx answers
and dropped connections are retried. A download is checked against its pinned sha256, or, for a
hub file without a pin, against the sha256 the hub publishes as the file's ETag (LFS files).
Clips are unpacked into a temporary folder next to the target, each checked by
`akb.audio.audio_duration`, and only then renamed into place, so a partial download or extraction
never looks complete; the metadata follows and the manifest comes last.

Why not `hf_hub_download`: from huggingface_hub 1.x it deletes a partial file when its process
dies, so a job killed at its time limit would start a 3 GB archive over; its own pieces are used
instead (hf_hub_url, get_hf_file_metadata, file_download.http_get). Tested with huggingface_hub 2.4.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from akb.audio import AudioError, audio_duration
from akb.data.audio_bench import FORMATS
from akb.data.bank import read_records
from akb.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

MANIFEST_NAME = "fetch-manifest.json"
DOWNLOADS_DIR = ".downloads"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Waits between tries after a 429/5xx answer or a dropped connection (seconds); the tests shorten them.
RETRY_WAITS: tuple[float, ...] = (2, 5, 15, 30)
MAX_RETRY_AFTER_S = 120.0
T = TypeVar("T")


class FetchError(ValueError):
    """A benchmark that cannot be fetched; the message says what failed and what to do."""


class OfflineError(FetchError):
    """No hub to download from: the message lists what to download and where to put it."""


@dataclass(frozen=True)
class HubFile:
    """A file of a Hugging Face dataset repository."""

    repo: str
    filename: str
    revision: str  # a commit pins the file; a branch is recorded as the commit it resolved to
    sha256: str | None = None

    def url(self, revision: str | None = None) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo, self.filename, repo_type="dataset", revision=revision or self.revision)


@dataclass(frozen=True)
class UrlFile:
    """A file at a plain URL: with no commit to pin, its bytes are pinned."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Release:
    name: str
    kind: str  # "mmau" or "mmar": the key naming each clip (akb.data.audio_bench.FORMATS)
    metadata: HubFile | UrlFile
    metadata_name: str  # the metadata file's name in out_dir (the benchmark entry's source)
    audio: HubFile
    audio_format: str  # "tar" (any compression) or "parquet" (clip bytes in a column)
    audio_dir: str  # the folder every clip path of the metadata starts with
    manual_audio: str = ""  # how else a user gets the clips, for the offline message ({out_dir} filled in)
    parquet_columns: dict[str, str] = field(default_factory=dict)


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            name="mmau-test-mini",
            kind="mmau",
            metadata=UrlFile(
                "https://raw.githubusercontent.com/Sakshi113/MMAU/main/mmau-test-mini.json",
                sha256="9f18fda99f8dbc2bc5ecd6323fb5063309f54969810b5c6f1caeb3b8d904cf1c",
            ),
            metadata_name="mmau-test-mini.json",
            # The hub repository keeps the clips inside its parquet; "main" is recorded in the manifest
            # as the commit it resolved to (pin it with the benchmark's fetch_revision).
            audio=HubFile("gamma-lab-umd/MMAU-test-mini", "test_mini.parquet", revision="main"),
            audio_format="parquet",
            audio_dir="test-mini-audios",
            manual_audio="or unpack the official test-mini-audios.tar.gz (linked from the MMAU README, "
            "github.com/Sakshi113/MMAU) into {out_dir}",
            parquet_columns={"audio": "context", "attributes": "other_attributes", "id": "id"},
        ),
        Release(
            name="mmar",
            kind="mmar",
            metadata=UrlFile(
                "https://raw.githubusercontent.com/ddlBoJack/MMAR/main/MMAR-meta.jsonl",
                sha256="1c9a343e7bebf1037482b935c54eacd43cc63df7b2c668724b5560caf1f84fad",
            ),
            metadata_name="MMAR-meta.jsonl",
            audio=HubFile("BoJack/MMAR", "mmar-audio.tar.gz", revision="3bd051123480e80d273ae9e8e9f1653f49010ac7"),
            audio_format="tar",
            audio_dir="audio",
        ),
    )
}


def get_release(name: str) -> Release:
    if name not in RELEASES:
        raise ValueError(f"unknown benchmark to fetch {name!r}; known: {sorted(RELEASES)}")
    return RELEASES[name]


def fetch_paths(source: str | Path, name: str) -> tuple[Path, Path]:
    """The metadata file and audio folder a fetch of `name` writes for a benchmark whose `source`
    is given: the source must be the release's metadata file name, in the folder fetched into."""
    release = get_release(name)
    source = Path(source)
    if source.name != release.metadata_name:
        raise ValueError(f"fetch {name!r} writes {release.metadata_name}; set source to "
                         f"{source.parent / release.metadata_name} (not {source})")
    return source, source.parent / release.audio_dir


def check_fetch_entries(entries: list[dict[str, Any]]) -> list[str]:
    """Problems of the `audio_benchmarks` entries that set `fetch`, as "index: message" lines: the
    source must be where the fetch writes, the kind the release's, and no two entries may fetch
    into the same file."""
    problems, seen = [], {}
    for i, entry in enumerate(entries):
        name = entry.get("fetch")
        if not name:
            continue
        release = get_release(name)
        try:
            metadata, _ = fetch_paths(entry["source"], name)
        except ValueError as e:
            problems.append(f"[{i}] ({entry['name']}): {e}")
            continue
        if entry.get("kind", "auto") not in ("auto", release.kind):
            problems.append(f"[{i}] ({entry['name']}): fetch {name!r} is an {release.kind} benchmark, "
                            f"not kind {entry['kind']!r}")
        if entry.get("audio_root") and Path(entry["audio_root"]) != metadata.parent:
            problems.append(f"[{i}] ({entry['name']}): the fetched clips are found from the source's folder; "
                            "leave audio_root null")
        if str(metadata) in seen:
            problems.append(f"[{i}] ({entry['name']}): fetches into {metadata} like {seen[str(metadata)]}")
        seen.setdefault(str(metadata), entry["name"])
    return problems


# ---- downloads ----


@dataclass
class Download:
    path: Path
    sha256: str
    size: int
    source: dict[str, Any]
    verified: bool  # its sha256 matched a pin or the hub's; else only recorded


def _hub_errors():
    from huggingface_hub import errors

    return errors


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's connection-level errors (huggingface_hub's client differs across versions)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        try:
            found.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(found) or (ConnectionError,)


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER_S)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _is_no_connection(error: BaseException) -> bool:
    """Nothing reached the server (refused, unresolvable, offline), as opposed to a dropped transfer."""
    if isinstance(error, _hub_errors().OfflineModeIsEnabled):
        return True
    return type(error).__name__ in ("ConnectError", "ConnectTimeout")


def _with_retries(what: str, call: Callable[[], T]) -> T:
    """`call`, tried again after a 429/5xx answer or a dropped connection; other errors pass."""
    transport = _transport_errors()
    for attempt in range(len(RETRY_WAITS) + 1):
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - classified below; anything else is re-raised
            status = _status(e)
            retryable = status == 429 or (status is not None and status >= 500)
            if not retryable and not (isinstance(e, transport) and not _is_no_connection(e)):
                raise
            if attempt == len(RETRY_WAITS):
                raise
            wait = _retry_after(e) or RETRY_WAITS[attempt]
            log.warning("%s: %s; retrying in %.0f s (%d/%d)", what,
                        f"HTTP {status}" if status else type(e).__name__, wait, attempt + 1, len(RETRY_WAITS))
            time.sleep(wait)
    raise AssertionError("unreachable")


def _explain(error: BaseException, what: str, file: HubFile | UrlFile, revision: str | None) -> FetchError:
    """A hub or network error as a FetchError that names the file and says what to do."""
    errors = _hub_errors()
    where = (f"{file.repo} (dataset) @ {revision or file.revision}: {file.filename}"
             if isinstance(file, HubFile) else file.url)
    if isinstance(error, errors.GatedRepoError):
        return FetchError(f"{where}: the dataset is gated; accept its conditions on the hub and set HF_TOKEN")
    if isinstance(error, errors.RepositoryNotFoundError):
        return FetchError(f"{where}: no such dataset (or it is private: set HF_TOKEN)")
    if isinstance(error, errors.RevisionNotFoundError):
        return FetchError(f"{where}: no such revision; set the benchmark's fetch_revision to an existing "
                          "commit or branch (e.g. main)")
    not_found = getattr(errors, "RemoteEntryNotFoundError", None) or errors.EntryNotFoundError
    if isinstance(error, not_found) or _status(error) == 404:
        return FetchError(f"{where}: no such file at this revision; set fetch_revision, or place the files "
                          "yourself (see README)")
    status = _status(error)
    if status in (401, 403):
        return FetchError(f"{what}: {where} answered HTTP {status}: access denied; set HF_TOKEN to a token "
                          "that may read the dataset")
    if status == 429 or (status is not None and status >= 500):
        return FetchError(f"{what}: {where} answered HTTP {status} after {len(RETRY_WAITS)} retries; "
                          "try again later (a rerun resumes the download)")
    if status is not None:
        return FetchError(f"{what}: {where} answered HTTP {status}")
    return FetchError(f"{what}: {where}: {type(error).__name__}: {error}; rerun to resume the download")


def _verify_sha256(path: Path, expected: str | None, what: str) -> str:
    digest = sha256_file(path)
    if expected and digest != expected:
        path.unlink(missing_ok=True)  # a rerun must download it again, not resume onto it
        raise FetchError(f"{what}: sha256 {digest} does not match the expected {expected}; the download "
                         "is corrupt or the file changed upstream (it was deleted; check the pinned "
                         "sha256/revision, then rerun)")
    return digest


def _fetch_file(file: HubFile | UrlFile, downloads: Path, revision: str | None, sha256: str | None,
                timeout: float) -> Download:
    """One file into `downloads`, resuming its `.part` file; checked against `sha256` (or a pin)."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    expected = sha256 or file.sha256
    downloads.mkdir(parents=True, exist_ok=True)
    final = downloads / file.filename
    sidecar = downloads / f"{file.filename}.json"
    what = f"downloading {file.filename}"
    try:
        if isinstance(file, HubFile):
            url = file.url(revision)
            headers = build_hf_headers()  # HF_TOKEN
            # Retries are ours (bounded waits); older huggingface_hub versions have no such option.
            no_retry = ({"retry_on_errors": False}
                        if "retry_on_errors" in inspect.signature(get_hf_file_metadata).parameters else {})
            meta = _with_retries(f"{file.filename} (HEAD)", lambda: get_hf_file_metadata(
                url, headers=headers, timeout=timeout, **no_retry))
            etag = (meta.etag or "").strip('"')
            # An LFS file's ETag is its sha256: a check for files nobody pinned.
            expected = expected or (etag if SHA256_RE.match(etag) else None)
            source = {"repo": file.repo, "filename": file.filename, "revision": revision or file.revision,
                      "commit": meta.commit_hash, "etag": etag, "url": url}
            download_url, size, tag = meta.location or url, meta.size, etag[:16] or "noetag"
            if download_url.split("/")[2] != url.split("/")[2]:
                headers.pop("authorization", None)  # a signed CDN URL must not get the hub token
        else:
            headers, source, download_url, size, tag = {}, {"url": file.url}, file.url, None, "url"
        if final.is_file() and sidecar.is_file():
            done = json.loads(sidecar.read_text())
            if done.get("source") == source and (not expected or done.get("sha256") == expected):
                log.info("%s: already downloaded (%s)", file.filename, final)
                return Download(final, done["sha256"], final.stat().st_size, source, bool(expected))
        part = downloads / f"{file.filename}.{tag}.part"
        for stale in downloads.glob(f"{file.filename}.*.part"):
            if stale != part:  # another version of the file: its bytes would corrupt this one
                stale.unlink()

        def get() -> None:
            resume = part.stat().st_size if part.exists() else 0
            if size is not None and resume > size:
                part.unlink()
                resume = 0
            if resume and expected and (size is None or resume == size) and sha256_file(part) == expected:
                return  # finished by an earlier run that stopped before publishing it
            if resume:
                log.info("%s: resuming at byte %d of %s", file.filename, resume, size or "?")
            with part.open("ab") as f:
                http_get(download_url, f, resume_size=resume, headers=headers, expected_size=size,
                         displayed_filename=file.filename)

        log.info("%s: downloading from %s", file.filename, download_url)
        _with_retries(file.filename, get)
    except FetchError:
        raise
    except Exception as e:  # noqa: BLE001 - every hub/network error becomes one clear message
        if _is_no_connection(e) or isinstance(e, _hub_errors().OfflineModeIsEnabled):
            raise OfflineError(str(e)) from None
        if isinstance(e, (_hub_errors().HfHubHTTPError, *_transport_errors())):
            raise _explain(e, what, file, revision) from None
        raise
    digest = _verify_sha256(part, expected, f"{file.filename} from {download_url}")
    os.replace(part, final)
    write_json(sidecar, {"source": source, "sha256": digest})
    return Download(final, digest, final.stat().st_size, source, bool(expected))


# ---- clips ----


def clip_targets(records: list[dict], kind: str, audio_dir: str, where: str) -> dict[str, str]:
    """File name -> path (relative to the metadata's folder) of every clip the metadata names.

    Every path must be relative, stay inside `audio_dir`, and one file name must not name two
    different paths (clips are found in archives by file name)."""
    key = FORMATS[kind].audio_key
    targets: dict[str, str] = {}
    for index, record in enumerate(records):
        item = f"{where}: item {record.get('id', f'#{index}') if isinstance(record, dict) else f'#{index}'}"
        value = record.get(key) if isinstance(record, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise FetchError(f"{item}: field {key!r} must name the clip")
        path = PurePosixPath(value.strip().replace("\\", "/"))
        parts = [p for p in path.parts if p != "."]
        if path.is_absolute() or ".." in parts or len(parts) < 2 or parts[0] != audio_dir:
            raise FetchError(f"{item}: clip path {value!r} is not inside {audio_dir}/")
        rel = "/".join(parts)
        if targets.setdefault(parts[-1], rel) != rel:
            raise FetchError(f"{item}: clip file name {parts[-1]!r} is also used for {targets[parts[-1]]}")
    if not targets:
        raise FetchError(f"{where}: names no clips")
    return targets


def _check_member(name: str, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise FetchError(f"{archive}: refusing an archive with an unsafe member path {name!r} "
                         "(absolute or with '..')")


def _write_clip(stream, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)


def _extract_tar(archive: Path, targets: dict[str, str], root: Path, progress) -> set[str]:
    done: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # streamed: a .tar.gz is decompressed once
                _check_member(member.name, archive)
                name = PurePosixPath(member.name).name
                if name not in targets or not member.isfile():
                    continue
                if name in done:
                    raise FetchError(f"{archive}: holds two clips named {name!r}; which is the benchmark's "
                                     "cannot be told")
                _write_clip(tar.extractfile(member), root / targets[name])
                done.add(name)
                progress.update(1)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise FetchError(f"{archive}: not a readable tar archive ({e})") from None
    return done


def _extract_parquet(archive: Path, targets: dict[str, str], root: Path, columns: dict[str, str],
                     progress) -> set[str]:
    """Clips stored as file bytes in a parquet column, named by the item id (a column, or a key of a
    JSON-encoded attributes column, as in the MMAU hub release)."""
    import pyarrow.parquet as pq

    by_id = {PurePosixPath(rel).stem: name for name, rel in targets.items()}
    done: set[str] = set()
    try:
        table = pq.ParquetFile(archive)
        present = set(table.schema_arrow.names)
        audio_col, attr_col, id_col = columns["audio"], columns.get("attributes"), columns.get("id")
        wanted = [c for c in (audio_col, attr_col, id_col) if c and c in present]
        if audio_col not in present:
            raise FetchError(f"{archive}: no column {audio_col!r} holding the clips (columns: {sorted(present)})")
        for batch in table.iter_batches(batch_size=32, columns=wanted):
            for row in batch.to_pylist():
                item_id = row.get(id_col) if id_col else None
                if item_id is None and attr_col and row.get(attr_col):
                    attrs = row[attr_col]
                    attrs = json.loads(attrs) if isinstance(attrs, str) else attrs
                    item_id = attrs.get("id")
                name = by_id.get(str(item_id))
                audio = row.get(audio_col)
                payload = audio.get("bytes") if isinstance(audio, dict) else audio
                if name is None or not payload or name in done:
                    continue
                target = root / targets[name]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)
                done.add(name)
                progress.update(1)
    except FetchError:
        raise
    except (OSError, ValueError, KeyError) as e:  # pyarrow's errors derive from these
        raise FetchError(f"{archive}: not a readable parquet file ({type(e).__name__}: {e})") from None
    return done


def _extract_clips(release: Release, archive: Path, targets: dict[str, str], root: Path) -> None:
    """Every clip of `targets` from `archive` into `root`, each then read by audio_duration."""
    from tqdm import tqdm

    log.info("%s: extracting %d clips from %s", release.name, len(targets), archive.name)
    with tqdm(total=len(targets), desc=f"extracting {release.name}", unit="clip", disable=None) as progress:
        if release.audio_format == "tar":
            done = _extract_tar(archive, targets, root, progress)
        elif release.audio_format == "parquet":
            done = _extract_parquet(archive, targets, root, release.parquet_columns, progress)
        else:
            raise ValueError(f"unknown audio_format {release.audio_format!r}")
    missing = sorted(set(targets) - done)
    if missing:
        raise FetchError(f"{archive}: lacks {len(missing)} of the {len(targets)} clips the metadata names "
                         f"(e.g. {missing[:5]})")
    bad = []
    for rel in targets.values():
        try:
            audio_duration(root / rel)
        except AudioError as e:
            bad.append(str(e))
    if bad:
        raise FetchError(f"{archive}: {len(bad)} clip(s) cannot be read:\n  " + "\n  ".join(bad[:10]))


def _clips_readable(root: Path, targets: dict[str, str]) -> bool:
    try:
        for rel in targets.values():
            audio_duration(root / rel)
    except AudioError:
        return False
    return True


# ---- the fetch ----


def _placement_message(release: Release, out_dir: Path, revision: str | None, reason: str) -> str:
    audio = release.audio
    clips = f"{out_dir / release.audio_dir}/<id>.wav"
    if release.audio_format == "parquet":
        extract = (f"write each row's clip (the bytes in column {release.parquet_columns['audio']!r}) as {clips}, "
                   f"<id> from column {release.parquet_columns.get('attributes') or release.parquet_columns['id']!r}")
    else:
        extract = f"unpack it so that each clip is {clips}"
    lines = [
        f"cannot fetch {release.name}: {reason}.",
        "Download these yourself and place them so:",
        f"  {release.metadata.url if isinstance(release.metadata, UrlFile) else release.metadata.url()}",
        f"    -> {out_dir / release.metadata_name}"
        + (f"  (sha256 {release.metadata.sha256})" if release.metadata.sha256 else ""),
        f"  {audio.url(revision)}",
        f"    -> {extract}" + (f"; {release.manual_audio.format(out_dir=out_dir)}" if release.manual_audio else ""),
        "then rerun: a complete copy in place is checked and used without downloading.",
    ]
    return "\n".join(lines)


def _request(release: Release, revision: str | None, audio_sha256: str | None) -> dict[str, Any]:
    return {"release": release.name, "metadata": asdict(release.metadata),
            "audio": asdict(replace(release.audio, revision=revision or release.audio.revision,
                                    sha256=audio_sha256 or release.audio.sha256))}


def _complete(release: Release, out_dir: Path, request: dict) -> dict | None:
    """The manifest when `out_dir` already holds this release, verified: the metadata's sha256, and
    every clip it names readable. A copy placed by hand (no manifest) that passes is adopted."""
    metadata = out_dir / release.metadata_name
    if not metadata.is_file() or not (out_dir / release.audio_dir).is_dir():
        return None
    manifest_path = out_dir / MANIFEST_NAME
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            manifest = None
    if manifest is not None and manifest.get("request") != request:
        return None  # another release, revision or pin was asked for
    expected = manifest["metadata"]["sha256"] if manifest else release.metadata.sha256
    digest = sha256_file(metadata)
    if not expected or digest != expected:
        return None
    try:
        targets = clip_targets(read_records(str(metadata)), release.kind, release.audio_dir, str(metadata))
    except ValueError:
        return None
    if not _clips_readable(out_dir, targets):
        return None
    if manifest is None:
        manifest = {"request": request, "metadata": {"file": release.metadata_name, "sha256": digest,
                                                     "size": metadata.stat().st_size, "source": "found in place"},
                    "audio": {"dir": release.audio_dir, "clips": len(targets), "archive": None},
                    "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_json(manifest_path, manifest)
        log.info("%s: a complete copy found in %s; adopted (manifest written)", release.name, out_dir)
    return manifest


def fetch_benchmark(
    release: str | Release,
    out_dir: str | Path,
    revision: str | None = None,
    audio_sha256: str | None = None,
    keep_downloads: bool = False,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Fetch a benchmark's metadata and clips into `out_dir`; returns the manifest.

    `revision` overrides the hub revision of the audio file, `audio_sha256` pins its sha256. Nothing
    is downloaded when `out_dir` already holds the release, verified. Raises OfflineError (what to
    place where) without a hub, FetchError for a refused download or archive."""
    from huggingface_hub import constants

    release = get_release(release) if isinstance(release, str) else release
    if audio_sha256 is not None and not SHA256_RE.match(audio_sha256):
        raise ValueError(f"audio sha256 must be 64 lower-case hex digits, not {audio_sha256!r}")
    out_dir = Path(out_dir)
    request = _request(release, revision, audio_sha256)
    manifest = _complete(release, out_dir, request)
    if manifest is not None:
        log.info("%s: already present and verified in %s; nothing to download", release.name, out_dir)
        return manifest
    if getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)():
        raise OfflineError(_placement_message(release, out_dir, revision, "offline mode (HF_HUB_OFFLINE=1)"))

    out_dir.mkdir(parents=True, exist_ok=True)
    # Whatever is there is not (or no longer) a verified copy: nothing may look complete meanwhile.
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    (out_dir / release.metadata_name).unlink(missing_ok=True)
    downloads = out_dir / DOWNLOADS_DIR
    try:
        meta = _fetch_file(release.metadata, downloads, None, None, timeout)
        targets = clip_targets(read_records(str(meta.path)), release.kind, release.audio_dir, str(meta.path))
        audio = _fetch_file(release.audio, downloads, revision, audio_sha256, timeout)
    except OfflineError as e:
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
        raise OfflineError(_placement_message(release, out_dir, revision, f"no connection ({e})")) from None

    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=out_dir))
    try:
        try:
            _extract_clips(release, audio.path, targets, staging)
        except FetchError:
            if not audio.verified:  # nothing vouches for these bytes: a rerun downloads them again
                audio.path.unlink(missing_ok=True)
            raise
        final = out_dir / release.audio_dir
        if final.exists():
            os.replace(final, staging / ".replaced")  # removed with the staging folder
        os.replace(staging / release.audio_dir, final)
        with atomic_path(out_dir / release.metadata_name) as tmp:
            shutil.copyfile(meta.path, tmp)
        manifest = {
            "request": request,
            "metadata": {"file": release.metadata_name, "sha256": meta.sha256, "size": meta.size,
                         "source": meta.source},
            "audio": {"dir": release.audio_dir, "clips": len(targets),
                      "archive": {"file": audio.path.name, "sha256": audio.sha256, "size": audio.size,
                                  "format": release.audio_format, "source": audio.source}},
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(out_dir / MANIFEST_NAME, manifest)  # last: its presence means complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_downloads:
        shutil.rmtree(downloads, ignore_errors=True)
    log.info("%s: %d clips in %s, metadata %s (archive sha256 %s)", release.name, len(targets),
             out_dir / release.audio_dir, out_dir / release.metadata_name, audio.sha256)
    return manifest
