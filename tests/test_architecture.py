"""The package layout holds: imports go one way, and no module imports itself round a circle.

The graph is read from the source (every ``import`` and ``from ... import``, including
those inside functions and under ``TYPE_CHECKING``), so a lazy import cannot hide an
edge. DESIGN.md: ``nst`` imports nothing from the others; ``tuner`` imports ``nst`` only;
``trainer`` may read studies through ``tuner``'s small public readers; ``dashboard``
reads what the others store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nst", "tuner", "trainer", "dashboard")
#: The parts of ``tuner`` that ``trainer`` may read (studies, records, storage).
TUNER_READERS = {"tuner.reader", "tuner.records"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Product modules that ``path`` imports (``from pkg import mod`` counts as ``pkg.mod`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read(graph):
    # guards the reader itself: known edges must be found, lazy ones included
    assert "nst.training" in graph["nst.netproxy"]
    assert "nst.netproxy" in graph["tuner.objective"]
    assert "nst.training" in graph["trainer.loop"]


def test_the_engine_imports_nothing_from_the_other_packages(graph):
    bad = {m: sorted(d for d in deps if not d.startswith("nst")) for m, deps in graph.items() if m.startswith("nst")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_tuner_imports_no_trainer_and_no_dashboard_module(graph):
    bad = {m: sorted(d for d in deps if d.startswith(("trainer", "dashboard")))
           for m, deps in graph.items() if m.startswith("tuner")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_the_trainer_reads_studies_only_through_tuners_public_readers(graph):
    bad = {m: sorted(d for d in deps if (d.startswith("tuner") and d not in TUNER_READERS) or d.startswith("dashboard"))
           for m, deps in graph.items() if m.startswith("trainer")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_no_module_imports_itself_round_a_circle(graph):
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
