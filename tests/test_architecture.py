"""The package's structure as docs/architecture in the README describes it: layers that import only
downwards, no import cycle between subpackages, and command-line modules that hold no workflow."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "sotlat"
# from the ground up; a unit may import its own layer's (without a cycle) and those below
LAYERS = [
    {"errors", "interrupts", "pct_errors", "progress", "atomic", "__init__"},
    {"tables"},
    {"models"},
    {"profiler", "simulator", "estimator"},
    {"sot", "report", "demo", "campaign"},
    {"cli", "__main__"},
]


def _unit(path: Path) -> str:
    """A subpackage (tables, models, ...) or a top-level module (errors, demo, ...)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports() -> dict[str, set[str]]:
    """unit -> the units it imports from (at any depth of the module: a function's import counts too)."""
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sotlat":
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "sotlat" else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("sotlat.")]
            for name in names:
                target = name.split(".")[1]
                if target != unit and target != "__version__":
                    edges.setdefault(unit, set()).add(target)
    return edges


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def test_every_unit_has_a_layer_and_imports_none_above_it():
    for unit, targets in _imports().items():
        for target in targets:
            assert _layer(target) <= _layer(unit), f"{unit} (layer {_layer(unit)}) imports {target} (layer {_layer(target)}), above it"


def test_no_import_cycle_between_subpackages_and_profiler_and_simulator_stand_apart():
    edges = _imports()
    assert "simulator" not in edges.get("profiler", set()) and "profiler" not in edges.get("simulator", set())

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t})) for t in edges.get(start, ()))

    cycles = sorted(u for u in edges if reaches(u, u, {u}))
    assert not cycles, f"import cycles through {cycles}"


@pytest.mark.parametrize("path", sorted((SRC / "cli").glob("*.py")), ids=lambda p: p.name)
def test_command_line_functions_are_short(path):
    """Every command is: check the options, one library call, show the result: at most 40 lines."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno - node.lineno + 1 <= 40, f"{path.name}: {node.name} is {node.end_lineno - node.lineno + 1} lines"
