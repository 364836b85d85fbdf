"""The package layout a maintainer relies on: one package per stage, each owning its `akb` commands;
short handlers; no import cycle; the lower layers import nothing of the stages; the report reads
score files only; listing the commands loads no torch."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from akb.cli import STAGE_COMMANDS

LIB = Path(__file__).resolve().parent.parent / "workflow"
STAGES = {"probe", "cascade", "lalm", "audio_llms", "diagnostics", "scoring", "report", "assets", "bankgen",
          "knowledge_dose"}
MODEL_RUNNERS = {"probe", "cascade", "lalm", "audio_llms", "assets", "models", "captioners", "bankgen"}
MAX_HANDLER_LINES = 16  # "about 10 lines": the signature, lazy imports and a call or two into the library


def _modules() -> dict[str, Path]:
    found = {}
    for path in (LIB / "akb").rglob("*.py"):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("akb"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("akb")}
    return names


def _package(module: str) -> str:
    return module.split(".")[1] if "." in module else "akb"


def _is_command_layer(module: str) -> bool:
    return module.endswith(".cli") or module in ("akb.cli", "akb.options", "akb.__main__")


def test_no_import_cycle():
    graph = {m: _imports(p, top_level_only=True) for m, p in _modules().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module, path):
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep in graph and dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _cross_package_imports():
    for module, path in _modules().items():
        if _is_command_layer(module):
            continue
        for dep in _imports(path, top_level_only=False):  # lazy imports count: they still couple
            if _package(dep) != _package(module):
                yield module, _package(module), dep, _package(dep)


def test_data_and_models_import_nothing_of_the_stages():
    bad = [(m, d) for m, pkg, d, dep_pkg in _cross_package_imports() if pkg in ("data", "models") and dep_pkg in STAGES]
    assert not bad, f"lower layers importing stages: {bad}"


def test_report_reads_score_files_only():
    bad = [(m, d) for m, pkg, d, dep_pkg in _cross_package_imports() if pkg == "report" and dep_pkg in MODEL_RUNNERS]
    assert not bad, f"report modules importing model-running packages: {bad}"


def test_every_stage_package_registers_its_commands():
    cli_modules = {m for m in _modules() if m.endswith(".cli") and m != "akb.cli"}
    assert cli_modules == set(STAGE_COMMANDS)
    assert {_package(m) for m in cli_modules} >= STAGES


def test_root_parser_is_short_and_handlers_call_the_library():
    assert len((LIB / "akb" / "cli.py").read_text().splitlines()) <= 100
    long = []
    for module in STAGE_COMMANDS:
        path = _modules()[module]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("cmd_"):
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # without the docstring
                lines = body[-1].end_lineno - body[0].lineno + 1
                if lines > MAX_HANDLER_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long


def test_listing_the_commands_loads_no_model_library():
    code = ("import sys; from akb.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'librosa', 'matplotlib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_shared_option_defaults_have_one_home():
    from akb.diagnostics.conditions import MIN_FRAGMENT_SAMPLES
    from akb.options import MIN_FRAGMENT_SAMPLES as OPTION_DEFAULT

    assert OPTION_DEFAULT == MIN_FRAGMENT_SAMPLES
    duplicated = defaultdict(list)
    for module, path in _modules().items():
        if module.endswith(".cli") or module == "akb.options":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if '"resources/models"' in line or '"--packaged-root"' in line or '"--threads"' in line:
                    duplicated[module].append(n)
    assert set(duplicated) == {"akb.options"}, dict(duplicated)
