"""The conda environments used by `--software-deployment-method conda` (envs/*.yaml): they agree with
pyproject.toml, every rule that runs a command names one, and each installs the project. Whether each
env really runs its rules is tests/envs/run_env_test.py's (slow; tests/test_env_jobs.py runs it)."""

import os
import re
import subprocess
import tomllib

import pytest

from envfiles import ENVS_DIR, ROOT, env_files, env_requirements, requirement_name, rule_blocks

# Needed to run the workflow, not inside its jobs.
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}
CONTAINER = ROOT / "containers/akb.def"


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {requirement_name(r): r for r in project["dependencies"]}


def _env_packages():
    """PyPI name -> [(env file, requirement)] over every env."""
    packages = {}
    for name, path in env_files().items():
        for requirement in env_requirements(path):
            packages.setdefault(requirement_name(requirement), []).append((path.name, requirement))
    return packages


def test_every_env_package_is_a_project_dependency_with_the_same_floor():
    declared = _pyproject()
    for name, uses in _env_packages().items():
        assert name in declared, f"{uses[0][0]}: {name} is not in pyproject.toml dependencies"
        floor = re.search(r">=\s*([\w.]+)", declared[name])
        for env, requirement in uses:
            assert floor and f">={floor.group(1)}" in requirement.replace(" ", ""), (
                f"{env}: {requirement!r} does not carry pyproject's floor {declared[name]!r}"
            )


def test_every_job_dependency_is_in_some_env():
    missing = set(_pyproject()) - set(_env_packages()) - WORKFLOW_ONLY
    assert not missing, f"pyproject dependencies absent from envs/: {sorted(missing)}"


def test_every_rule_with_a_command_names_an_existing_env():
    rules = rule_blocks()
    assert {"probe_model", "prepare_bank", "caption_benchmark", "fetch_audio_benchmark_*"} <= set(rules)
    for name, rule in rules.items():
        if rule["shell"]:
            assert rule["env"], f"{rule['file']}: rule {name} runs a command but names no conda env"
        if rule["env"]:
            assert rule["env"] in env_files(), f"{rule['file']}: rule {name} names envs/{rule['env']}.yaml, which does not exist"


def test_rules_that_load_models_use_the_env_with_torch():
    """The split the env files promise: captioners (Whisper, audio LMs) need torch; tables do not get it."""
    rules = rule_blocks()
    for name in ("caption_benchmark", "probe_model", "cascade_model", "transcribe_benchmark", "train_lalm"):
        assert "torch" in map(requirement_name, env_requirements(env_files()[rules[name]["env"]])), name
    for env in ("tables", "figures", "audio"):
        assert "torch" not in map(requirement_name, env_requirements(env_files()[env])), env


def _post_deploy(env: str, tmp_path, **environ):
    """Run envs/<env>.post-deploy.sh with a `python` on PATH that records its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "python").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n')
    (fake / "python").chmod(0o755)
    environ = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", **environ}
    script = ENVS_DIR / f"{env}.post-deploy.sh"
    result = subprocess.run(["bash", str(script)], env=environ, capture_output=True, text=True)
    args = (tmp_path / "args").read_text().split() if (tmp_path / "args").exists() else None
    return result, args


@pytest.mark.parametrize("env", sorted(env_files()))
def test_each_env_installs_the_clone_without_dependencies(env, tmp_path):
    result, args = _post_deploy(env, tmp_path, AKB_REPO="/clone/of/akb")
    assert result.returncode == 0, result.stderr
    assert args[:3] == ["-m", "pip", "install"] and "--no-deps" in args, args
    assert args[args.index("-e") + 1] == "/clone/of/akb", args


def test_post_deploy_without_the_clone_fails_naming_the_variable(tmp_path):
    result, args = _post_deploy("tables", tmp_path)
    assert result.returncode != 0 and args is None
    assert "AKB_REPO" in result.stderr


def test_the_snakefile_tells_the_envs_where_the_clone_is(monkeypatch):
    from akb.job_env import prepare_job_environment

    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.setenv("PYTHONPATH", "")
    monkeypatch.delenv("AKB_REPO", raising=False)
    prepare_job_environment(ROOT / "workflow")
    assert os.environ["AKB_REPO"] == str(ROOT)


def _recipe_post() -> list[str]:
    """The shell lines of the container recipe's %post section."""
    section = re.search(r"^%post\n(.*?)(?=^%|\Z)", CONTAINER.read_text(), re.S | re.M).group(1)
    return [line.strip() for line in section.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_container_installs_torch_then_the_project_with_every_dependency():
    """pyproject's dependencies are the union of the env files (tests above), so the image holds every env."""
    installs = [line for line in _recipe_post() if "pip install" in line]
    assert len(installs) == 2 and "TORCH_INDEX" in installs[0] and "TORCH_SPEC" in installs[0], installs
    assert installs[1].split()[-2:] == ["-e", "/opt/akb"] and "--no-deps" not in installs[1], installs
    copied = re.search(r"^%files\n(.*?)(?=^%)", CONTAINER.read_text(), re.S | re.M).group(1).split()
    for needed in ("pyproject.toml", "workflow"):
        assert needed in copied, f"{CONTAINER.name}: %files does not copy {needed}"


def test_the_container_takes_the_torch_of_the_ci_venv():
    recipe = dict(re.findall(r"^\s+(TORCH_\w+)=(\S+)$", CONTAINER.read_text(), re.M))
    setup = (ROOT / ".ci/setup-venv").read_text()
    assert recipe["TORCH_SPEC"] == re.search(r"TORCH_SPEC:-([^}]+)\}", setup).group(1)
    assert recipe["TORCH_INDEX"] == re.search(r"PYTORCH_CPU_INDEX=(\S+)", setup).group(1)
