"""Which distribution a project's own documentation documents, from its Sphinx conf.py.

A notebook in a project's docs (pvlib's ``docs/tutorials/atmosphere.ipynb``)
was run against that project's development version, not its last release:
the conf.py that builds those docs says which distribution they are of, as
it takes the version from it (``import pvlib`` … ``pvlib.__version__``,
``get_distribution("emcee")``, ``get_distribution(project)`` with ``project =
"pint"``). Parsed, never executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["documented_distributions"]

# How deep below the project's root a conf.py is looked for (docs/sphinx/source/conf.py).
DEPTH = 4
_SKIPPED = {
    ".git",
    "site-packages",
    "node_modules",
    ".tox",
    ".venv",
    "venv",
    "build",
    "_build",
}
_VERSION_CALLS = {"get_distribution", "version", "require"}


def _conf_files(root: Path) -> list[Path]:
    found: list[Path] = []
    level = [root]
    for _ in range(DEPTH + 1):
        found += [folder / "conf.py" for folder in level if (folder / "conf.py").is_file()]
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir() and child.name not in _SKIPPED and not child.name.startswith(".")
        ]
    return found


def _strings_assigned(tree: ast.Module) -> dict[str, str]:
    assigned: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = node.value.value
    return assigned


def _documented_in(tree: ast.Module) -> set[str]:
    """What this conf.py takes its version from: an imported module's ``__version__``,
    or a distribution named to ``get_distribution``/``version``."""
    imported: set[str] = set()
    attributes: set[str] = set()
    distributions: set[str] = set()
    assigned = _strings_assigned(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.asname is None)
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "__version__"
            and isinstance(node.value, ast.Name)
        ):
            attributes.add(node.value.id)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            argument = node.args[0]
            if name not in _VERSION_CALLS:
                continue
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                distributions.add(argument.value)
            elif isinstance(argument, ast.Name) and argument.id in assigned:
                distributions.add(assigned[argument.id])
    return (attributes & imported) | distributions


def documented_distributions(root: Path) -> set[str]:
    """Names (modules or distributions, lower case) the project's Sphinx docs are of."""
    found: set[str] = set()
    for conf in _conf_files(root):
        try:
            tree = ast.parse(conf.read_text(errors="replace"))
        except (OSError, SyntaxError, ValueError):
            continue
        found.update(name.lower() for name in _documented_in(tree))
    return found
