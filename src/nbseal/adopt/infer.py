"""What an existing notebook needs, inferred from its project, its cells and its history.

Nothing here writes: :func:`infer` returns an :class:`Inference` that says
what the first cell should declare and, for each line, why.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement

from nbseal.adopt.documented import (
    SphinxDocs,
    documented_names,
    rendering_docs_requirements,
    sphinx_docs,
)
from nbseal.adopt.imports import (
    distribution_for,
    drawn_by_tqdm,
    imported_modules,
    is_standard_library,
    pip_installs,
    string_literals,
)
from nbseal.adopt.projectfiles import Declared, declared_requirements, project_root
from nbseal.adopt.python import AUTO_SETUPTOOLS, PythonPick, pick_python
from nbseal.directives import data_name_ok
from nbseal.notebook import code_sources
from nbseal.pythons import python_release

if TYPE_CHECKING:
    from nbseal.backends.interpreters import InterpreterProvider

__all__ = ["DataFile", "Inference", "Reason", "Releases", "infer", "pin_of"]

# A distribution's final releases: (version, upload instant) each.
Releases = Callable[[str], list[tuple[str, dt.datetime]]]

# Files bigger than this are not declared as data (say so instead).
DATA_LIMIT = 200 * 1024 * 1024
# A referenced folder is declared file by file up to this many files.
FOLDER_LIMIT = 50


@dataclass(frozen=True)
class Reason:
    """One inferred fact and where it came from, as `nbseal adopt` prints it."""

    what: str
    why: str


@dataclass(frozen=True)
class DataFile:
    name: str  # as the cells open it, relative to the notebook
    path: Path  # on this machine
    cell: int


@dataclass
class Inference:
    notebook: Path
    pin: str  # RFC 3339, UTC
    pin_source: str
    declared: list[Declared]
    imported: list[str]  # distributions from imports not already declared
    data: list[DataFile]
    python: str | None  # the notebook's own, from its metadata
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Every distribution the cells import or install, declared or not.
    by_import: list[str] = field(default_factory=list)
    # Packages of the notebook's folder its cells import (a folder with __init__.py).
    packages: list[str] = field(default_factory=list)
    # The CPython current at the pin, when older than this one (see adopt.python).
    python_pick: PythonPick | None = None

    @property
    def hashed(self) -> list[DataFile]:
        """Files inside the notebook's folder: declared as data, checked by hash
        (not those of a package shared whole: data may not be placed inside a share)."""
        return [
            d
            for d in self.data
            if not d.name.startswith("../") and d.name.split("/")[0] not in self.packages
        ]

    @property
    def shares(self) -> list[str]:
        """Paths beside the notebook's folder its cells open: shared read-only.

        A notebook may not hash files outside its folder (nbseal/sources.py),
        so ``../data/raw/x.csv`` becomes ``#seal share ../data``, which shows
        it where the cell looks.
        """
        found: list[str] = list(self.packages)
        for data in self.data:
            parts = data.name.split("/")
            if parts[0] == "..":
                ups = next(i for i, part in enumerate(parts) if part != "..")
                share = "/".join(parts[: ups + 1])
                if share not in found:
                    found.append(share)
        return found

    def requirement_sets(self) -> list[tuple[str, list[str]]]:
        """The environments to try, most faithful first, each with what it is."""
        exact = [d.requirement for d in self.declared]
        names = list(dict.fromkeys(Requirement(r).name for r in exact))
        sets = []
        if exact:
            sets.append(("declared versions and imports", [*exact, *self.imported]))
            if names != exact:
                sets.append(("declared names without versions, and imports", names + self.imported))
        if self.by_import and (exact or not sets):
            sets.append(("imports only", list(self.by_import)))
        if not sets:
            sets.append(("nothing imported: the standard library only", []))
        unique: list[tuple[str, list[str]]] = []
        for label, requirements in sets:
            if all(requirements != seen for _, seen in unique):
                unique.append((label, requirements))
        return unique


def instant_of(text: str) -> dt.datetime:
    """An RFC 3339 instant (or a bare date) as an aware datetime."""
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git_date(path: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "log", "-1", "--format=%cI", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout.strip()
    return text if result.returncode == 0 and text else None


# Before this, `python -m venv` environments came with setuptools (CPython < 3.12).
OLD_VENVS = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
OLD_SETUPTOOLS = "setuptools>=65,<81"
# A file modified this recently was probably just downloaded or copied: its
# time says nothing of when the notebook was written.
FRESH = dt.timedelta(days=1)


def pin_of(path: Path, notebook: Any = None, now: dt.datetime | None = None) -> tuple[str, str]:
    """When the notebook was last changed, and how that is known: its last git
    commit, else its modification time, else (a file just copied) what its
    outputs reveal: the Python that made them, pinned when the next came out."""
    committed = _git_date(path)
    if committed is not None:
        return _utc(dt.datetime.fromisoformat(committed)), "its last git commit"
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    revealed = _revealed_by_outputs(notebook) if notebook is not None else None
    if now - modified < FRESH and revealed is not None:
        return revealed
    return _utc(modified), "the file's modification time (not in a git repository)"


def _revealed_by_outputs(notebook: Any) -> tuple[str, str] | None:
    """The instant the Python that ran the notebook was superseded, if its metadata says
    which one ran it and that one has a successor with a known release date."""
    version = _python_of(notebook)
    if version is None or not version.startswith("3."):
        return None
    minor = int(version.split(".")[1])
    successor = python_release(f"3.{minor + 1}")
    if successor is None:
        return None
    why = (
        f"its outputs were made with Python {version} (language_info) and the file is new: "
        f"pinned when Python 3.{minor + 1} came out"
    )
    return successor, why


# A notebook in a project's own docs ran that project's development version,
# which its next release holds if it came soon enough; after longer, the
# notebook's own date says more about everything else it uses.
DEVELOPMENT_WINDOW = dt.timedelta(days=180)


def _canonical(requirement: str) -> str | None:
    try:
        return Requirement(requirement).name.lower().replace("_", "-")
    except ValueError:
        return None


def _documented_pin(
    pin: str, docs: list[SphinxDocs], distributions: list[str], releases: Releases
) -> tuple[str, str] | None:
    """The pin moved to the next release of the project whose docs hold the notebook."""
    documented = documented_names(docs)
    pinned = instant_of(pin)
    moves = []
    for name in dict.fromkeys(n for d in distributions if (n := _canonical(d)) in documented):
        later = sorted((when, version) for version, when in releases(name) if when > pinned)
        if later and later[0][0] - pinned <= DEVELOPMENT_WINDOW:
            moves.append((later[0][0], name, later[0][1]))
    if not moves:
        return None
    when, name, version = max(moves)
    why = (
        f"moved to {name} {version}'s release ({when:%Y-%m-%d}): the notebook is in "
        f"{name}'s own documentation, written against its development version"
    )
    return _utc(when.replace(microsecond=0) + dt.timedelta(seconds=1)), why


def _local_modules(folder: Path) -> set[str]:
    """Modules a notebook imports from its own folder (``utils.py``, ``mypkg/``)."""
    found = {p.stem for p in folder.glob("*.py")}
    found |= {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    return found


def _data_name(text: str) -> str | None:
    """A literal that could name a file relative to the notebook (no URLs, no globs)."""
    text = text.strip()
    if not text or "://" in text or text.startswith(("/", "~")) or any(c in text for c in "*?\0"):
        return None
    name = "/".join(p for p in PurePosixPath(text).parts if p != ".")
    return name if data_name_ok(name) else None


# A pattern of file names a cell expands (``glob.glob("data/*.csv")``,
# ``"runs/**/*.json"``): names, folders and wildcards only.
_PATTERN = re.compile(r"[\w.*?\[\]-]+(?:/[\w.*?\[\]-]+)*")
_EXTENSION = re.compile(r"\.\w+$")


def _glob_pattern(text: str) -> str | None:
    """A literal that is a pattern of files relative to the notebook, else None.

    It needs a folder or an extension: ``"*"`` and ``"**"`` are more often
    strings (``"*" * 20``, Markdown) than the notebook's whole folder. One
    ``**`` at most: each more multiplies the folders walked.
    """
    text = text.strip()
    if not any(c in text for c in "*?") or not _PATTERN.fullmatch(text):
        return None
    if "/" not in text and not _EXTENSION.search(text):
        return None
    if PurePosixPath(text).parts.count("**") > 1:
        return None
    return text


def _matches(notebook_dir: Path, root: Path, pattern: str) -> list[str]:
    """The files ``pattern`` names from the notebook's folder, as the cell would get
    them: at most one more than :data:`FOLDER_LIMIT`, none from outside ``root``.

    The walk starts at the pattern's folder (``data`` of ``data/**/*.csv``),
    which must be in the project: a notebook's ``../../**/*.txt`` would
    otherwise walk the disk.
    """
    parts = PurePosixPath(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), 0)
    start = (notebook_dir / PurePosixPath(*parts[:fixed])).resolve() if fixed else notebook_dir
    if start != root and root not in start.parents:
        return []
    found: list[str] = []
    for name in glob.iglob(pattern, root_dir=notebook_dir, recursive=True):
        if (notebook_dir / name).is_file():
            found.append(name)
            if len(found) > FOLDER_LIMIT:
                break
    return sorted(found)


def _data_files(
    notebook_dir: Path, root: Path, sources: list[str]
) -> tuple[list[DataFile], list[str]]:
    found: dict[str, DataFile] = {}
    notes: list[str] = []
    for literal, cell in string_literals(sources):
        pattern = _glob_pattern(literal)
        if pattern is not None:
            names = [n for m in _matches(notebook_dir, root, pattern) if (n := _data_name(m))]
            if len(names) > FOLDER_LIMIT:
                notes.append(
                    f"cell {cell} lists {pattern}, more than {FOLDER_LIMIT} files: too many to "
                    "declare one by one; add the ones it needs with `nbseal data add`"
                )
                continue
            for matched in names:
                path = (notebook_dir / matched).resolve()
                if (path != root and root not in path.parents) or matched in found:
                    continue
                if path.stat().st_size > DATA_LIMIT:
                    notes.append(f"{matched} is over {DATA_LIMIT >> 20} MB: not declared")
                    continue
                found[matched] = DataFile(matched, path, cell)
            continue
        name = _data_name(literal)
        if name is None or name in found:
            continue
        path = (notebook_dir / name).resolve()
        if path != root and root not in path.parents:
            continue  # outside the project: not the notebook's own data
        if path.is_file():
            files = [(name, path)]
        elif path.is_dir() and name not in (".", ""):
            inside = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
            if len(inside) > FOLDER_LIMIT:
                notes.append(
                    f"cell {cell} opens the folder {name}/ of {len(inside)} files: too many to "
                    "declare one by one; add the ones it needs with `nbseal data add`"
                )
                continue
            files = [(f"{name}/{p.relative_to(path).as_posix()}", p) for p in inside]
        else:
            continue
        for file_name, file_path in files:
            if file_path.stat().st_size > DATA_LIMIT:
                notes.append(f"{file_name} is over {DATA_LIMIT >> 20} MB: not declared")
                continue
            found.setdefault(file_name, DataFile(file_name, file_path, cell))
    return list(found.values()), notes


def _python_of(notebook: Any) -> str | None:
    info = notebook.get("metadata", {}).get("language_info", {})
    version = info.get("version") if info.get("name", "python") == "python" else None
    return str(version) if version else None


def _on_the_index(
    declared: list[Declared], on_index: Callable[[str], bool] | None
) -> tuple[list[Declared], list[Declared]]:
    """``declared`` split into what the package index has and what it does not
    (a conda environment file names conda's own packages: hdf4, libnetcdf)."""
    if on_index is None:
        return declared, []
    names = list(dict.fromkeys(Requirement(d.requirement).name for d in declared))
    with ThreadPoolExecutor(max_workers=8) as pool:
        known = dict(zip(names, pool.map(on_index, names), strict=True))
    kept = [d for d in declared if known[Requirement(d.requirement).name]]
    return kept, [d for d in declared if not known[Requirement(d.requirement).name]]


def infer(
    path: Path,
    notebook: Any,
    *,
    pin: str | None = None,
    on_index: Callable[[str], bool] | None = None,
    releases: Releases | None = None,
    pythons: InterpreterProvider | None = None,
) -> Inference:
    """Everything `nbseal adopt` writes for the notebook at ``path``, with reasons.

    ``on_index`` says whether the package index has a project of that name;
    declared requirements it does not have are left out, and said so.
    ``releases`` gives a distribution's releases: a notebook in the docs of one
    it imports is pinned at that one's next release (:data:`DEVELOPMENT_WINDOW`).
    ``pythons`` finds interpreters: given, a pin older than this Python asks it
    for the CPython current at the pin (:func:`~nbseal.adopt.python.pick_python`).
    """
    folder = path.resolve().parent
    root = project_root(folder)
    sources = code_sources(notebook)
    if pin is not None:
        pin_source = "--pin"
    else:
        pin, pin_source = pin_of(path, notebook)
    declared, unreadable = declared_requirements(folder, root)
    declared, unknown = _on_the_index(declared, on_index)
    declared_names = {Requirement(d.requirement).name.lower().replace("_", "-") for d in declared}
    local = _local_modules(folder)
    imported: list[str] = []
    reasons: list[Reason] = []
    for d in declared:
        reasons.append(Reason(d.requirement, f"declared in {d.source}"))
    left_out = [f"{d.requirement} (declared in {d.source})" for d in unknown]
    by_import: list[str] = []
    for requirement in pip_installs(sources):
        name = requirement.split("=")[0].split("<")[0].split(">")[0].lower()
        by_import.append(requirement)
        if name not in declared_names and requirement not in imported:
            imported.append(requirement)
            reasons.append(Reason(requirement, "installed by a cell (%pip / !pip)"))
    for item in imported_modules(sources):
        if is_standard_library(item.module) or item.module in local:
            continue
        distribution, mapped = distribution_for(item.module)
        key = distribution.lower()
        if not any(r.lower().startswith(key) for r in by_import):
            by_import.append(distribution)
        if key in declared_names or any(r.lower().startswith(key) for r in imported):
            continue
        imported.append(distribution)
        via = f"pipreqs' map: {item.module} → {distribution}" if mapped else "same name"
        reasons.append(Reason(distribution, f"`import {item.module}` in cell {item.cell} ({via})"))
    bar = drawn_by_tqdm(notebook)
    if bar is not None and "tqdm" not in declared_names | {r.lower() for r in by_import}:
        imported.append("tqdm")
        by_import.append("tqdm")
        why = (
            f"cell {bar}'s stored output shows a tqdm progress bar, which no cell imports: "
            "a library the cell calls drew it"
        )
        reasons.append(Reason("tqdm", why))
    docs = sphinx_docs(root)
    present = declared_names | {n for r in by_import if (n := _canonical(r))}
    rendered, bad = rendering_docs_requirements(docs, root, folder, present)
    unreadable += bad
    rendered, unknown_docs = _on_the_index(rendered, on_index)
    left_out += [f"{d.requirement} (declared in {d.source})" for d in unknown_docs]
    for d in rendered:
        why = f"declared in {d.source}, the requirements of the docs that render the notebook"
        reasons.append(Reason(d.requirement, why))
    declared = [*declared, *rendered]
    if releases is not None and pin_source != "--pin":
        everything = [*(d.requirement for d in declared), *by_import]
        moved = _documented_pin(pin, docs, everything, releases)
        if moved is not None:
            pin_source = f"{pin_source} ({pin}), {moved[1]}"
            pin = moved[0]
    python = _python_of(notebook)
    pick = pick_python(pin, pythons, python) if pythons is not None else None
    if pick is not None and pick.option is not None:
        reasons.append(Reason(pick.option, pick.why))
    if instant_of(pin) < OLD_VENVS and "setuptools" not in declared_names | set(by_import):
        # `python -m venv` gave CPython < 3.12 environments setuptools, and old
        # code imports its pkg_resources: the release CPython 3.11's venv
        # carried (65) or a later one that still has it (81 dropped it); the
        # pin's own (39 in 2018) does not import on 3.11.
        tools = AUTO_SETUPTOOLS if pick is not None and pick.found else OLD_SETUPTOOLS
        imported.append(tools)
        by_import.append(tools)
        why = "old code imports pkg_resources, which environments of that time carried"
        reasons.append(Reason(tools, why))
    data, notes = _data_files(folder, root, sources)
    data_names = {d.name for d in data}
    packages: list[str] = []
    for module in sorted(local):
        if any(m.module == module for m in imported_modules(sources)):
            if (folder / f"{module}.py").is_file() and f"{module}.py" not in data_names:
                data.append(DataFile(f"{module}.py", (folder / f"{module}.py").resolve(), 0))
                reasons.append(Reason(f"{module}.py", "a module of the notebook's folder"))
            elif (folder / module / "__init__.py").is_file():
                packages.append(module)
                why = "a package of the notebook's folder its cells import: shared read-only"
                reasons.append(Reason(module + "/", why))
    warnings = [f"could not read {u}" for u in unreadable] + notes
    if pick is not None and not pick.found:
        warnings.append(f"python: {pick.why}")
    if left_out:
        warnings.append("left out, the package index has no such project: " + ", ".join(left_out))
    if python and python.startswith("2"):
        warnings.append(
            f"the notebook was written for Python {python}: cells in Python 2 syntax will fail"
        )
    return Inference(
        notebook=path,
        pin=pin,
        pin_source=pin_source,
        declared=declared,
        imported=imported,
        by_import=by_import,
        packages=packages,
        data=data,
        python=python,
        reasons=reasons,
        warnings=warnings,
        python_pick=pick,
    )


def relative_source(data: DataFile, notebook_dir: Path) -> str:
    """How the data line names the file: relative to the notebook, as `nbseal data add` does."""
    return os.path.relpath(data.path, notebook_dir.resolve())
