"""Which of a project's tests execute a notebook, and what those tests install.

iminuit 1.3.8's ``test_notebooks.py`` runs every ``tutorial/*.ipynb`` with
nbconvert's ExecutePreprocessor. Its basic tutorial calls ``minimize``, which
imports scipy, and only iminuit's ``tests`` extra names scipy
(``extras_require={"tests": ["pytest", "cython", "matplotlib", "scipy"]}``).
What a project installed to execute a notebook in its tests is what that
notebook ran with, as for the docs that render notebooks (adopt.documented).

A test file executes notebooks when it names a notebook runner (nbconvert's
ExecutePreprocessor or ``--execute``, nbclient, papermill, testbook, nbval),
and it covers this notebook when one of its strings names the notebook, its
folder, or a glob that matches it. Parsed, never executed.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
from pathlib import Path, PurePosixPath

from nbseal.adopt.projectfiles import (
    SKIPPED_FOLDERS,
    Declared,
    canonical_name,
    requirements_of_tests,
)

__all__ = ["executing_tests", "tested_requirements"]

# How deep below the project's root a test file is looked for (pkg/tests/test_x.py).
DEPTH = 3
# Larger files are not test modules written by hand.
MAX_BYTES = 200_000
_RUNNERS = re.compile(r"ExecutePreprocessor|NotebookClient|nbclient|papermill|testbook|nbval")
_EXECUTE_OPTION = "--execute"


def _test_files(root: Path) -> list[Path]:
    found: list[Path] = []
    level = [root]
    for _ in range(DEPTH + 1):
        children: list[Path] = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    children.append(entry)
                elif entry.suffix == ".py" and _is_a_test_module(entry.name):
                    found.append(entry)
        level = children
    return found


def _is_a_test_module(name: str) -> bool:
    return name.startswith("test") or name.endswith("_test.py") or name == "conftest.py"


def _runs_notebooks(text: str) -> bool:
    return bool(_RUNNERS.search(text)) or (_EXECUTE_OPTION in text and "nbconvert" in text)


def _strings(tree: ast.Module) -> set[str]:
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300
    }


def _plain(text: str) -> str:
    """A path as the test wrote it, without ``./`` or ``../`` in front or ``/`` behind."""
    text = text.replace(os.sep, "/").strip()
    while text.startswith(("./", "../")):
        text = text.split("/", 1)[1]
    return text.rstrip("/")


def _covers(text: str, notebook: PurePosixPath) -> bool:
    """Whether a test's string names ``notebook`` (relative to the project's root):
    its path or name, a folder above it, or a glob that matches it."""
    named = _plain(text)
    if not named or named in (".", ".."):
        return False
    if named in (str(notebook), notebook.name):
        return True
    if any(named == str(folder) for folder in notebook.parents if str(folder) != "."):
        return True
    if named.endswith(".ipynb") and any(c in named for c in "*?["):
        return fnmatch.fnmatchcase(str(notebook), named) or fnmatch.fnmatchcase(
            notebook.name, named
        )
    return False


def executing_tests(root: Path, notebook: Path) -> list[Path]:
    """The project's test files that execute ``notebook``."""
    try:
        relative = PurePosixPath(notebook.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        return []
    found = []
    for path in _test_files(root):
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            text = path.read_text(errors="replace")
            if not _runs_notebooks(text):
                continue
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            continue
        if any(_covers(s, relative) for s in _strings(tree)):
            found.append(path)
    return found


def tested_requirements(
    root: Path, notebook: Path, names: set[str]
) -> tuple[list[Declared], list[str], list[Path]]:
    """What the tests that execute ``notebook`` install, but for ``names`` (the
    notebook has those already); files that could not be read; the test files."""
    tests = executing_tests(root, notebook)
    if not tests:
        return [], [], []
    declared, unreadable = requirements_of_tests(root, notebook.parent)
    return [d for d in declared if canonical_name(d.requirement) not in names], unreadable, tests
