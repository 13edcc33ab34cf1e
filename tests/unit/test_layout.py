"""The package's shape, as docs/architecture.md draws it: rooms of bounded size, no cycles.

Read from the source files' own imports (``ast``), so a late import inside a
function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "nbseal"
MAX_LINES = 500
# Packages of nbseal and the packages they may import; anything else of nbseal
# (top-level modules such as plan.py or store.py) is outside these rooms.
PACKAGES = ("kernel", "backends", "sandbox", "directives")
# Which way arrows go between the packages (never back).
ALLOWED = {
    "kernel": {"backends", "sandbox", "directives"},
    "backends": {"sandbox", "directives"},
    "sandbox": set(),
    "directives": set(),
}


def _room(path: Path) -> str:
    """A package's name, or a top-level module's."""
    return path.relative_to(SRC).with_suffix("").parts[0]


def _imports(path: Path) -> set[str]:
    """The nbseal rooms ``path`` imports (``nbseal.X...`` -> ``X``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "nbseal" and len(parts) > 1:
                found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        room = _room(path)
        graph.setdefault(room, set()).update(_imports(path) - {room})
    return graph


def test_packages_import_each_other_one_way_only() -> None:
    graph = _graph()
    for package in PACKAGES:
        reached = graph.get(package, set()) & set(PACKAGES)
        assert reached <= ALLOWED[package], (
            f"{package} imports {sorted(reached - ALLOWED[package])}"
        )


def test_no_two_rooms_import_each_other() -> None:
    graph = _graph()
    pairs = sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, set()))
    assert pairs == []


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_only_backends_name_backends() -> None:
    # A backend is chosen through the registry (backends.backend_for...): code
    # elsewhere comparing a name to "uv", "deb" or "guix" is a backend's
    # knowledge in the wrong room. lock.py's check of its own lock format is
    # the one exception, named here.
    test = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](uv|deb|guix)["']""")
    offenders = []
    for path in SRC.rglob("*.py"):
        if _room(path) == "backends" or path.name == "lock.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if test.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []
