"""What an existing notebook needs, inferred from its project, its cells and its history.

Nothing here writes: :func:`infer` returns an :class:`Inference` that says
what the first cell should declare and, for each line, why.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement

from nbseal.adopt.datafiles import DataFile, data_files
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
)
from nbseal.adopt.projectfiles import (
    Declared,
    canonical_name,
    declared_requirements,
    is_a_project,
    project_root,
)
from nbseal.adopt.python import AUTO_SETUPTOOLS, PythonPick, pick_python
from nbseal.adopt.tested import tested_requirements
from nbseal.notebook import code_sources
from nbseal.pythons import python_release

if TYPE_CHECKING:
    from nbseal.backends.interpreters import InterpreterProvider

__all__ = ["DataFile", "Inference", "Reason", "Releases", "infer", "pin_of"]

# A distribution's final releases: (version, upload instant) each.
Releases = Callable[[str], list[tuple[str, dt.datetime]]]


@dataclass(frozen=True)
class Reason:
    """One inferred fact and where it came from, as `nbseal adopt` prints it."""

    what: str
    why: str


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
    # What the project installs where it runs the notebook (the docs that render
    # it, the tests that execute it), tried after the imports: uv prefers the
    # newest releases of what comes first.
    run_with: list[str] = field(default_factory=list)
    # Packages of the notebook's folder its cells import (a folder with __init__.py).
    packages: list[str] = field(default_factory=list)
    # The CPython to ask for, when older than this one: the one the notebook records,
    # else the one current at the pin (see adopt.python).
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
        rest = [*self.imported, *self.run_with]
        sets = []
        if exact or self.run_with:
            sets.append(("declared versions and imports", [*exact, *rest]))
            if names != exact:
                sets.append(("declared names without versions, and imports", names + rest))
        if self.by_import and (exact or self.run_with or not sets):
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
    ``pythons`` finds interpreters: given, it is asked for the CPython the
    notebook's metadata records, else (a pin older than this Python) the one
    current at the pin (:func:`~nbseal.adopt.python.pick_python`).
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
    # Outside a project, only docs the notebook lies in are its own.
    docs = [
        d for d in sphinx_docs(root) if is_a_project(root) or d.folder in (folder, *folder.parents)
    ]
    present = declared_names | {n for r in by_import if (n := _canonical(r))}
    rendered, bad = rendering_docs_requirements(docs, root, folder, present)
    unreadable += bad
    rendered, unknown_docs = _on_the_index(rendered, on_index)
    left_out += [f"{d.requirement} (declared in {d.source})" for d in unknown_docs]
    for d in rendered:
        why = f"declared in {d.source}, the requirements of the docs that render the notebook"
        reasons.append(Reason(d.requirement, why))
    present |= {canonical_name(d.requirement) for d in rendered}
    tested, bad, tests = tested_requirements(root, path, present)
    unreadable += bad
    tested, unknown_tests = _on_the_index(tested, on_index)
    left_out += [f"{d.requirement} (declared in {d.source})" for d in unknown_tests]
    for d in tested:
        runner = ", ".join(os.path.relpath(t, folder) for t in tests)
        why = f"declared in {d.source}, the requirements of the tests that execute the notebook"
        reasons.append(Reason(d.requirement, f"{why} ({runner})"))
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
    data, notes = data_files(folder, root, sources)
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
        run_with=[d.requirement for d in [*rendered, *tested]],
    )


def relative_source(data: DataFile, notebook_dir: Path) -> str:
    """How the data line names the file: relative to the notebook, as `nbseal data add` does."""
    return os.path.relpath(data.path, notebook_dir.resolve())
