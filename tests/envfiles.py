"""The per-rule conda environments (envs/*.yaml) read as pip requirements, and which rule uses which:
shared by tests/test_envs.py (cheap checks) and tests/envs/run_env_test.py (builds and runs them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS_DIR = ROOT / "envs"
RULES_DIR = ROOT / "workflow/rules"
# conda-forge names whose PyPI name differs.
CONDA_TO_PYPI = {"pytorch": "torch"}
# Entries of an env file that are no package of the project's (the interpreter, the installer).
NOT_PACKAGES = {"python", "pip"}


def requirement_name(requirement: str) -> str:
    """`torch>=2.4` -> `torch` (conda and pip specs alike)."""
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def env_files() -> dict[str, Path]:
    """Env name (file stem) -> file: models -> envs/models.yaml."""
    return {path.stem: path for path in sorted(ENVS_DIR.glob("*.yaml"))}


def env_requirements(path: Path) -> list[str]:
    """Every package of an env file as a pip requirement with the file's version bound: conda entries
    under their PyPI names, then the `pip:` section as written."""
    requirements = []
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        for requirement in dep["pip"] if isinstance(dep, dict) else [dep]:
            name = requirement_name(requirement)
            if name in NOT_PACKAGES:
                continue
            pypi = CONDA_TO_PYPI.get(name, name)
            requirements.append(pypi + requirement.strip()[len(name):])
    return requirements


# A rule's block runs from its header to the next header (or the end of the file).
_HEADER = re.compile(r"^[ \t]*(?:rule\s+(\w+)\s*:|rule\s*:|use\s+rule\s+(\w+)\s+as\s+(\w+)\s+with\s*:)", re.M)
_DYNAMIC_NAME = re.compile(r"name:\s*\n\s*f?\"([A-Za-z0-9_]*)")
_ENV = re.compile(r"conda:\s*\n\s*\"(?:\.\./)*envs/(\w+)\.yaml\"")


def rule_blocks() -> dict[str, dict]:
    """Every rule of workflow/rules/*.smk -> {"file", "env" (env name or None), "shell" (has a shell
    command)}. A rule named by an f-string (`rule:` with `name: f"fetch_x_{...}"`) is listed by its
    fixed prefix plus `*`; `use rule A as B with:` inherits A's env and command unless it sets its own."""
    rules: dict[str, dict] = {}
    for path in sorted(RULES_DIR.glob("*.smk")):
        text = path.read_text()
        headers = list(_HEADER.finditer(text))
        for header, following in zip(headers, headers[1:] + [None]):
            block = text[header.end():following.start() if following else len(text)]
            env = _ENV.search(block)
            entry = {"file": path.name, "env": env.group(1) if env else None, "shell": "shell:" in block}
            if header.group(1):
                name = header.group(1)
            elif header.group(3):
                name = header.group(3)
                parent = rules.get(header.group(2), {})
                entry = {**entry, "env": entry["env"] or parent.get("env"), "shell": parent.get("shell", False)}
            else:
                dynamic = _DYNAMIC_NAME.search(block)
                name = (dynamic.group(1) if dynamic else "?") + "*"
            rules[name] = entry
    return rules
