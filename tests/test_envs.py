"""The conda environments used by `--software-deployment-method conda` agree with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PYPI = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}
# Needed to run the workflow, not inside its jobs.
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r): r for r in project["dependencies"]}


def _env_packages():
    packages = {}
    for path in sorted((ROOT / "envs").glob("*.yaml")):
        for dep in yaml.safe_load(path.read_text())["dependencies"]:
            for requirement in dep["pip"] if isinstance(dep, dict) else [dep]:
                name = _name(requirement)
                packages.setdefault(CONDA_TO_PYPI.get(name, name), []).append((path.name, requirement))
    return {k: v for k, v in packages.items() if k not in NOT_PACKAGES}


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


def test_rules_use_existing_envs():
    for rules in (ROOT / "workflow/rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules.read_text()):
            assert (rules.parent / env).resolve().is_file(), f"{rules.name}: {env} does not exist"
