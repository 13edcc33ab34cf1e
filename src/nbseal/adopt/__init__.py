"""`nbseal adopt`: give an existing notebook the first cell it needs, and lock it.

:func:`infer` (in :mod:`nbseal.adopt.infer`) reads the notebook's project
files, imports and history; :func:`adopt_notebook` writes what it found as a
new first cell (``#seal pin``, ``#seal env``, ``#seal data``) and locks it.
If the most faithful environment (the project's declared versions) does not
resolve, looser ones are tried in turn (declared names, then imports only);
the notebook is written only once one of them locks, so a failed adoption
leaves the file as it was.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbseal.adopt.infer import (
    OLD_SETUPTOOLS,
    Inference,
    Reason,
    Releases,
    infer,
    relative_source,
)
from nbseal.adopt.python import AUTO_SETUPTOOLS
from nbseal.digests import sha256_file
from nbseal.errors import AdoptError, NbsealError
from nbseal.locking import LockStatus, lock_notebook
from nbseal.notebook import mark_kernel, read_notebook, write_notebook
from nbseal.progress import Progress

if TYPE_CHECKING:
    from nbseal.backends.pypi_index import IndexFile

__all__ = [
    "Adoption",
    "Inference",
    "Reason",
    "adopt_notebook",
    "first_cell",
    "notebooks_in",
    "on_the_index",
    "release_times",
    "releases_on_the_index",
]

ENV_NAME = "py"


@dataclass(frozen=True)
class Adoption:
    inference: Inference
    cell: str  # the first cell as written (or as it would be, with --dry-run)
    chosen: str  # which requirement set locked
    attempts: list[tuple[str, str]]  # sets that did not lock, and why
    statuses: list[LockStatus]


def notebooks_in(paths: list[Path]) -> list[Path]:
    """The notebooks named, and those inside named folders (checkpoints left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(path)
    return found


def first_cell(inference: Inference, requirements: list[str], python: str | None = None) -> str:
    """The cell adopt writes; ``python`` is an option of the environment line (``python=auto``)."""
    folder = inference.notebook.resolve().parent
    lines = [f"#seal pin {inference.pin}"]
    if requirements or python:
        lines.append(
            f"#seal env {ENV_NAME} <- {' '.join([*requirements, *filter(None, [python])])}"
        )
    lines += [f"#seal share {share}" for share in inference.shares]
    for data in inference.hashed:
        digest = sha256_file(data.path)
        lines.append(f"#seal data {data.name} <- {relative_source(data, folder)} sha256:{digest}")
    return "\n".join(lines)


def on_the_index() -> Callable[[str], bool]:
    """Whether the package index uv uses has a project of that name (when the
    index cannot be read, every name is taken as known: uv will say)."""
    from nbseal.backends.pypi_index import ProjectIndex

    index = ProjectIndex()

    def has(name: str) -> bool:
        try:
            return bool(index.files(name))
        except NbsealError:
            return True

    return has


# A release's files go up over minutes or hours (a wheel per platform and
# Python, built by CI); files added later are wheels for a Python that came
# out after the release, not the release itself.
RELEASE_UPLOAD_WINDOW = dt.timedelta(days=2)


def release_times(files: Iterable[IndexFile]) -> list[tuple[str, dt.datetime]]:
    """Each final release, with the last upload of its files within
    :data:`RELEASE_UPLOAD_WINDOW` of its first: when all of it was out.

    sktime 0.4.3's first file went up at 16:11:01, its Linux wheels at
    16:25: a pin of 16:11:02 resolved to 0.4.1, without the module the
    notebook imports.
    """
    uploads: dict[str, list[dt.datetime]] = {}
    for file in files:
        if not (file.version.is_prerelease or file.yanked):
            uploads.setdefault(str(file.version), []).append(file.uploaded)
    found = []
    for version, times in uploads.items():
        first = min(times)
        found.append((version, max(t for t in times if t - first <= RELEASE_UPLOAD_WINDOW)))
    return found


def releases_on_the_index() -> Releases:
    """A distribution's final releases on the package index, each when it was all out."""
    from nbseal.backends.pypi_index import ProjectIndex

    index = ProjectIndex()

    def releases(name: str) -> list[tuple[str, dt.datetime]]:
        try:
            return release_times(index.files(name))
        except NbsealError:
            return []

    return releases


def _check_adoptable(path: Path, notebook: Any) -> None:
    metadata = notebook.get("metadata", {})
    language = metadata.get("kernelspec", {}).get("language") or metadata.get(
        "language_info", {}
    ).get("name", "python")
    if str(language).lower() not in ("python", "python2", "python3"):
        raise AdoptError.not_python(path, str(language))
    code = [c for c in notebook.cells if c.get("cell_type") == "code"]
    for index, cell in enumerate(notebook.cells, start=1):
        if cell in code:
            head = next((x.strip() for x in str(cell.source).splitlines() if x.strip()), "")
            if head.startswith(("#seal", ";;guix")) or head == "# /// script":
                raise AdoptError.already_adopted(path, index)


def _with_first_cell(path: Path, text: str) -> Any:
    import nbformat

    notebook = read_notebook(path)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(text))  # type: ignore[no-untyped-call]
    mark_kernel(notebook)
    return notebook


def _candidates(inference: Inference) -> list[tuple[str, list[str], str | None]]:
    """The environments to try, most faithful first: each requirement set on the
    pin's CPython (when it is here), then each on this Python."""
    sets = inference.requirement_sets()
    pick = inference.python_pick
    if pick is None or pick.option is None:
        return [(label, requirements, None) for label, requirements in sets]
    on_this: list[tuple[str, list[str], str | None]] = [
        (
            f"{label}, on this Python",
            [OLD_SETUPTOOLS if r == AUTO_SETUPTOOLS else r for r in requirements],
            None,
        )
        for label, requirements in sets
    ]
    auto: list[tuple[str, list[str], str | None]] = [
        (f"{label}, on CPython {pick.series}", r, pick.option) for label, r in sets
    ]
    return auto + on_this


def adopt_notebook(
    path: Path,
    *,
    pin: str | None = None,
    dry_run: bool = False,
    progress_for: Callable[[str], Progress] = Progress,
    on_index: Callable[[str], bool] | None = None,
    releases: Releases | None = None,
    python: str = "auto",
) -> Adoption:
    """Infer, write the first cell, lock; with ``dry_run`` only infer.

    ``on_index`` says whether the package index has a project, ``releases`` what
    releases it has (default: ask it). ``python``: ``auto`` asks for the CPython
    current at an older pin where this machine has it (else, or with ``this``,
    the environment runs on this Python).
    """
    from nbseal.backends.interpreters import interpreter_provider

    notebook = read_notebook(path)
    _check_adoptable(path, notebook)
    inference = infer(
        path,
        notebook,
        pin=pin,
        on_index=on_index or on_the_index(),
        releases=releases or releases_on_the_index(),
        pythons=interpreter_provider() if python == "auto" else None,
    )
    candidates = _candidates(inference)
    if dry_run:
        label, requirements, option = candidates[0]
        return Adoption(inference, first_cell(inference, requirements, option), label, [], [])
    # Each candidate is written and locked in a sibling file; only the one that
    # locks replaces the notebook, so a failed adoption leaves it as it was.
    trial = path.with_name(f".{path.stem}.adopting.ipynb")
    attempts: list[tuple[str, str]] = []
    try:
        for label, requirements, option in candidates:
            cell = first_cell(inference, requirements, option)
            write_notebook(_with_first_cell(path, cell), trial)
            try:
                statuses = lock_notebook(trial, progress_for=progress_for)
            except NbsealError as exc:
                attempts.append((label, exc.message))
                continue
            os.replace(trial, path)
            return Adoption(inference, cell, label, attempts, statuses)
    finally:
        trial.unlink(missing_ok=True)
    raise AdoptError.nothing_resolves(path, attempts)
