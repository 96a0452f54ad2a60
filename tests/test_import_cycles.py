"""No import circles inside pollwatch/: a module that needs another one must not be needed by it, even
through a third module or inside a function (a function-level import is a cycle postponed to run time).

The graph is read from the source with `ast`, so it also sees imports that only run in one branch.
Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first, so it counts as an import of those
packages too (unless the importer is inside them already): a package that re-exports a module which
imports back into the package's users is a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pollwatch"

# Circles allowed for now, each with the reason it is still there. Empty: keep it so (a circle not listed here
# fails the test).
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package (a package is its __init__)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, modules: dict[str, Path], package: str = PACKAGE) -> set[str]:
    """The pollwatch modules `name` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()

    def resolve(dotted: str) -> str | None:
        """The module itself, or the nearest enclosing module (`a.b.func` -> `a.b`)."""
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package and (found := resolve(alias.name)):
                    targets.add(found)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package this module is in (or is)
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin.split(".")[0] != package:
                continue
            for alias in node.names:
                found = resolve(f"{origin}.{alias.name}")
                if found:
                    targets.add(found)
    own = set(_ancestors(name)) | {name}
    with_packages = set()
    for t in targets:
        with_packages.add(t)
        with_packages.update(a for a in _ancestors(t) if a not in own)
    with_packages.discard(name)
    return with_packages


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of two or more modules: each module in one reaches every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def visit(v: str) -> None:  # Tarjan; a few hundred modules, so recursion stays shallow
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def circle(graph: dict[str, set[str]], comp: frozenset[str]) -> list[str]:
    """One concrete circle inside a component, to name in a failure: a shortest path from its first module
    back to itself."""
    start = min(comp)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle in {sorted(comp)}")


def test_pollwatch_has_no_new_import_cycle() -> None:
    graph = import_graph()
    new = [c for c in cycles(graph) if c not in KNOWN_CYCLES]
    assert not new, "import circles in pollwatch/ (break them):\n" + "\n".join(
        " -> ".join(circle(graph, c)) + f"  (all of {sorted(c)} import each other)" for c in new
    )


def test_known_cycles_still_exist() -> None:
    """An allow-listed circle that is gone must leave the list, so the list cannot hide a new one later."""
    found = set(cycles(import_graph()))
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"remove these from KNOWN_CYCLES, they are broken now: {gone}"


@pytest.mark.parametrize(
    "files, expected",
    [
        (
            {"a.py": "from pkg import b\n", "b.py": "def f():\n    from pkg.a import x\n"},
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (  # through a package that re-exports its module
            {
                "s/__init__.py": "from pkg.s.rows import Row\n",
                "s/rows.py": "def f():\n    from pkg import audit\n",
                "audit.py": "from pkg.s.tables import T\n",
                "s/tables.py": "",
            },
            ["pkg.audit", "pkg.s", "pkg.s.rows", "pkg.audit"],
        ),
        ({"a.py": "from . import b\n", "b.py": "from .a import y\n"}, ["pkg.a", "pkg.b", "pkg.a"]),
        ({"a.py": "from pkg import b\n", "b.py": "import json\n"}, None),
    ],
)
def test_the_graph_finds_circles(tmp_path: Path, files: dict[str, str], expected: list[str] | None) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for rel, src in files.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(src)
    modules = module_names(tmp_path, "pkg")
    graph = {n: imports_of(n, p, modules, "pkg") for n, p in modules.items()}
    assert [circle(graph, c) for c in cycles(graph)] == ([expected] if expected else [])
