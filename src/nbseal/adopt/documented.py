"""Which distribution a project's own documentation documents, from its Sphinx conf.py.

A notebook in a project's docs (pvlib's ``docs/tutorials/atmosphere.ipynb``)
was run against that project's development version, not its last release:
the conf.py that builds those docs says which distribution they are of, as
it takes the version from it (``import pvlib`` … ``pvlib.__version__``,
``get_distribution("emcee")``, ``get_distribution(project)`` with ``project =
"pint"``, ``getattr(importlib.import_module(project), "__version__")``).
Parsed, never executed.

When those docs render notebooks (``nbsphinx``, ``myst_nb`` or
``jupyter_sphinx`` among the conf.py's extensions), the docs' own
requirements are what the project installed to run them: sktime's
``docs/requirements.txt`` names pmdarima, a soft dependency of sktime that
its forecasting notebook needs and no import names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from nbseal.adopt.projectfiles import SKIPPED_FOLDERS, Declared, canonical_name, docs_requirements

__all__ = [
    "SphinxDocs",
    "documented_distributions",
    "documented_names",
    "rendering_docs_requirements",
    "sphinx_docs",
]

# How deep below the project's root a conf.py is looked for (docs/sphinx/source/conf.py).
DEPTH = 4
_VERSION_CALLS = {"get_distribution", "version", "require"}
# Sphinx extensions that render (and may execute) notebooks.
NOTEBOOK_EXTENSIONS = frozenset({"nbsphinx", "myst_nb", "jupyter_sphinx"})


@dataclass(frozen=True)
class SphinxDocs:
    """A project's Sphinx docs: where their conf.py is, and what it says."""

    folder: Path
    documents: frozenset[str]  # modules or distributions, lower case
    renders_notebooks: bool


def _conf_files(root: Path) -> list[Path]:
    found: list[Path] = []
    level = [root]
    for _ in range(DEPTH + 1):
        found += [folder / "conf.py" for folder in level if (folder / "conf.py").is_file()]
        level = [
            child
            for folder in level
            for child in sorted(folder.iterdir())
            if child.is_dir()
            and child.name not in SKIPPED_FOLDERS
            and not child.name.startswith(".")
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


def _string(node: ast.expr, assigned: dict[str, str]) -> str | None:
    """A string literal, or a name assigned one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return assigned.get(node.id)
    return None


def _modules_imported_by_call(tree: ast.Module, assigned: dict[str, str]) -> dict[str, str]:
    """``module = importlib.import_module(project)``: variable name -> module name."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        func = node.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name != "import_module" or not node.value.args:
            continue
        module = _string(node.value.args[0], assigned)
        if module is None:
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                bound[target.id] = module
    return bound


def _version_read_from(node: ast.AST) -> str | None:
    """``X.__version__`` or ``getattr(X, "__version__")``: the name X."""
    if (
        isinstance(node, ast.Attribute)
        and node.attr == "__version__"
        and isinstance(node.value, ast.Name)
    ):
        return node.value.id
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[0], ast.Name)
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value == "__version__"
    ):
        return node.args[0].id
    return None


def _documented_in(tree: ast.Module) -> set[str]:
    """What this conf.py takes its version from: an imported module's ``__version__``,
    or a distribution named to ``get_distribution``/``version``."""
    imported: set[str] = set()
    attributes: set[str] = set()
    distributions: set[str] = set()
    assigned = _strings_assigned(tree)
    by_call = _modules_imported_by_call(tree, assigned)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names if alias.asname is None)
        elif (name := _version_read_from(node)) is not None:
            if name in by_call:
                distributions.add(by_call[name])
            else:
                attributes.add(name)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in _VERSION_CALLS:
                continue
            if (named := _string(node.args[0], assigned)) is not None:
                distributions.add(named)
    return (attributes & imported) | distributions


def _extensions(tree: ast.Module) -> set[str]:
    """The names a conf.py puts in ``extensions`` (assigned, added or appended)."""
    found: set[str] = set()

    def strings(node: ast.AST) -> set[str]:
        return {
            n.value
            for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "extend")
            and isinstance(node.func.value, ast.Name)
        ):
            targets = [node.func.value.id]
        else:
            continue
        if "extensions" in targets:
            found |= strings(node)
    return found


def sphinx_docs(root: Path) -> list[SphinxDocs]:
    """The Sphinx docs found below ``root`` (conf.py files that parse)."""
    found: list[SphinxDocs] = []
    for conf in _conf_files(root):
        try:
            tree = ast.parse(conf.read_text(errors="replace"))
        except (OSError, SyntaxError, ValueError):
            continue
        documents = frozenset(name.lower() for name in _documented_in(tree))
        renders = bool(_extensions(tree) & NOTEBOOK_EXTENSIONS)
        found.append(SphinxDocs(conf.parent, documents, renders))
    return found


def documented_distributions(root: Path) -> set[str]:
    """Names (modules or distributions, lower case) the project's Sphinx docs are of."""
    return {name for docs in sphinx_docs(root) for name in docs.documents}


def documented_names(docs: list[SphinxDocs]) -> set[str]:
    """What ``docs`` document, as canonical distribution names (``_`` read as ``-``)."""
    return {name.replace("_", "-") for found in docs for name in found.documents}


def rendering_docs_requirements(
    docs: list[SphinxDocs], root: Path, notebook_dir: Path, names: set[str]
) -> tuple[list[Declared], list[str]]:
    """What the docs that render notebooks and document one of ``names`` install,
    but for ``names`` themselves (the notebook has those already)."""
    found: list[Declared] = []
    unreadable: list[str] = []
    for each in docs:
        if each.renders_notebooks and documented_names([each]) & names:
            more, bad = docs_requirements(each.folder, root, notebook_dir)
            found += [d for d in more if canonical_name(d.requirement) not in names]
            unreadable += bad
    return found, unreadable
