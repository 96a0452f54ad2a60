"""The layers of DESIGN.md, checked on the source: the core never reaches up, tasks never reach flows.

pollwatch/ (the core) imports neither prefect nor pollwatch.flows / pollwatch.tasks, except the CLI, the
one shell allowed to reach up (lazily, inside its commands). tasks/ never imports flows/. Imports inside
functions count as much as those at the top of a module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _is_cli(path: Path) -> bool:
    rel = path.relative_to(ROOT / "pollwatch")
    return rel.parts[0] == "cli" or rel.name.startswith("cli")


def _offences(folder: str, forbidden: tuple[str, ...], allowed=lambda p: False) -> list[str]:
    out = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" in path.parts or allowed(path):
            continue
        for name in sorted(_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


def test_the_core_never_imports_prefect_flows_or_tasks():
    assert _offences("pollwatch", ("prefect", "pollwatch.flows", "pollwatch.tasks"), allowed=_is_cli) == []


def test_tasks_never_import_flows():
    assert _offences("tasks", ("pollwatch.flows",)) == []


def test_nothing_imports_the_old_top_level_names():
    """flows/ and tasks/ install as pollwatch.flows and pollwatch.tasks: a bare `import flows` works only in a
    checkout's root folder, never from an installed package."""
    bare = [f for d in ("pollwatch", "flows", "tasks", "tests", "bench") for f in _offences(d, ("flows", "tasks"))]
    assert bare == []
