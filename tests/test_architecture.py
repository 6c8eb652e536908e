"""The package's shape, as docs/architecture.md states it: each subpackage imports only
the layers below it (imports inside functions included), and no module imports
itself back through others (a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Lowest first: a module may import its own layer and the ones before it.
LAYERS = [
    ("wsolbench.core",),
    ("wsolbench.data", "wsolbench.models"),
    ("wsolbench.methods", "wsolbench.datasets"),  # the plugins
    ("wsolbench.evaluation",),
    ("wsolbench.train",),
    ("wsolbench.reporting",),
    ("wsolbench.cluster",),
    ("wsolbench.bench",),
    ("wsolbench.cli", "wsolbench.metrics", "wsolbench.results"),  # the faces: CLI and API
]


def module_files() -> dict[str, Path]:
    found = {}
    for folder, package in (
        ("wsolbench", "wsolbench"),
        ("methods", "wsolbench.methods"),
        ("datasets", "wsolbench.datasets"),
    ):
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The wsolbench modules ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*head, base] if base else head)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def layer(name: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in names):
            return i
    return None  # the package root: PROTOCOL_VERSION and the folders, for everyone


GRAPH = {n: imports_of(n, p, set(module_files())) for n, p in module_files().items()}


def test_every_module_has_a_layer():
    assert [n for n in GRAPH if layer(n) is None] == ["wsolbench"]


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_import_from_a_higher_layer(name):
    if layer(name) is None:
        return
    higher = [t for t in GRAPH[name] if (layer(t) or 0) > layer(name)]
    assert not higher, f"{name} imports from a higher layer: {higher}"


def test_no_import_cycles():
    # Depth-first search; a grey node met again closes a cycle.
    state: dict[str, int] = {}
    cycles = []

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for t in sorted(GRAPH[n]):
            if state.get(t) == 1:
                cycles.append(path[path.index(t) :] + [t])
            elif t not in state:
                visit(t, [*path, t])
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n, [n])
    assert not cycles, cycles


def test_the_checker_sees_a_cycle_and_a_layer_breach(tmp_path):
    # The rules above must be able to fail: a tiny package with both faults.
    (tmp_path / "a.py").write_text("from wsolbench.core import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from wsolbench.core import a\n")
    known = {"wsolbench.core.a", "wsolbench.core.b", "wsolbench.cli"}
    assert imports_of("wsolbench.core.a", tmp_path / "a.py", known) == {"wsolbench.core.b"}
    assert imports_of("wsolbench.core.b", tmp_path / "b.py", known) == {"wsolbench.core.a"}
    assert layer("wsolbench.cli") > layer("wsolbench.core.a")


def test_no_function_over_fifty_lines():
    long = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 50:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long
