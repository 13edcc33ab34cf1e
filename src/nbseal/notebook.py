"""Notebook files: reading, atomic writing, and the ``metadata.nbseal`` section.

This module is the only one that touches ``metadata.nbseal``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from nbseal.errors import NotebookError
from nbseal.fsutil import atomic_write_text
from nbseal.lock import Lock
from nbseal.streams import multiline

__all__ = [
    "DISPLAY_NAME",
    "KERNEL_NAME",
    "LOCK_MIME",
    "code_sources",
    "insert_directive",
    "lock_output",
    "mark_kernel",
    "metadata_data",
    "metadata_locks",
    "output_locks",
    "read_notebook",
    "read_notebook_json",
    "record_run",
    "seal_metadata",
    "set_data",
    "set_locks",
    "stored_locks",
    "write_notebook",
]

# The kernel a notebook names in ``metadata.kernelspec`` to run under nbseal
# (the kernelspec itself: :mod:`nbseal.kernel.kernelspec`).
KERNEL_NAME = "nbseal"
DISPLAY_NAME = "nbseal (reproducible)"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotebookError.missing(path) from exc
    except OSError as exc:
        raise NotebookError.unreadable(path, str(exc.strerror)) from exc


def read_notebook_json(path: Path) -> dict[str, Any]:
    """The notebook as plain JSON, for reading only (the kernel's start path).

    Importing nbformat costs 0.1 s, and seconds where jsonschema pulls in
    rfc3987_syntax; the kernel needs only the cells and ``metadata.nbseal``.
    """
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise NotebookError.not_json(path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError.not_a_notebook(path, "a notebook: it has no cells")
    return data


def read_notebook(path: Path) -> Any:
    import nbformat  # costly to import (see read_notebook_json)

    text = _read_text(path)
    try:
        return nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        raise NotebookError.not_json(path) from exc
    except Exception as exc:
        raise NotebookError.not_a_notebook(path, f"a valid notebook: {exc}") from exc


def write_notebook(notebook: Any, path: Path) -> None:
    """Write atomically: an interrupted write never leaves a truncated notebook."""
    import nbformat

    text: str = nbformat.writes(notebook)  # type: ignore[no-untyped-call]
    atomic_write_text(path, text + "\n")


def mark_kernel(notebook: Any) -> None:
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": DISPLAY_NAME,
        "language": "python",
    }


def seal_metadata(notebook: Any) -> dict[str, Any]:
    section = notebook.metadata.setdefault("nbseal", {})
    if not isinstance(section, dict):
        raise NotebookError.not_an_object("metadata.nbseal")
    return section


LOCK_MIME = "application/vnd.nbseal.lock+json"
METADATA_FORMAT = 1


def lock_output(name: str, lock: Lock) -> dict[str, Any]:
    """The MIME entry a kernel puts beside a build summary, so the lock is saved."""
    return {LOCK_MIME: {"environment": name, "lock": lock.to_json()}}


def _lock_from(data: Any, where: str) -> Lock:
    try:
        return Lock.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise NotebookError.damaged_lock(where, exc) from exc


def metadata_locks(notebook: Any) -> dict[str, Lock]:
    """The locks ``nbseal lock`` wrote into ``metadata.nbseal``."""
    section = notebook["metadata"].get("nbseal", {})
    if not isinstance(section, dict):
        raise NotebookError.not_an_object("metadata.nbseal")
    environments = section.get("environments", {})
    if not isinstance(environments, dict):
        raise NotebookError.not_an_object("metadata.nbseal.environments")
    return {
        str(name): _lock_from(data, f"metadata.nbseal.environments.{name}")
        for name, data in environments.items()
    }


def output_locks(notebook: Any) -> dict[str, list[Lock]]:
    """Locks that kernels left in cell outputs, newest (last cell) first."""
    found: dict[str, list[Lock]] = {}
    for cell in reversed(notebook["cells"]):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            entry = output.get("data", {}).get(LOCK_MIME)
            if isinstance(entry, dict) and "environment" in entry and "lock" in entry:
                with contextlib.suppress(NotebookError):
                    lock = _lock_from(entry["lock"], "a cell output")
                    found.setdefault(str(entry["environment"]), []).append(lock)
    return found


def stored_locks(notebook: Any) -> dict[str, list[Lock]]:
    """Every lock the file holds per environment: ``metadata.nbseal`` first, then outputs."""
    candidates: dict[str, list[Lock]] = {
        name: [lock] for name, lock in metadata_locks(notebook).items()
    }
    for name, locks in output_locks(notebook).items():
        candidates.setdefault(name, []).extend(locks)
    return candidates


def set_locks(notebook: Any, locks: dict[str, Lock]) -> None:
    """Replace the environments' locks in ``metadata.nbseal``; other keys are kept."""
    section = seal_metadata(notebook)
    section["format"] = METADATA_FORMAT
    section["environments"] = {name: locks[name].to_json() for name in sorted(locks)}


def record_run(notebook: Any, *, sealed: bool) -> None:
    """Say in the file how it was last executed: sealed, or explicitly not."""
    from nbseal import __version__

    seal_metadata(notebook)["last_run"] = {"sealed": sealed, "nbseal": __version__}


def metadata_data(notebook: Any) -> dict[str, dict[str, str]]:
    """The data hashes ``nbseal lock`` recorded: NAME -> {"url", "sha256"}."""
    section = notebook["metadata"].get("nbseal", {})
    data = section.get("data", {}) if isinstance(section, dict) else {}
    return {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}


def set_data(notebook: Any, data: dict[str, dict[str, str]]) -> None:
    section = seal_metadata(notebook)
    section["format"] = METADATA_FORMAT
    if data:
        section["data"] = {name: data[name] for name in sorted(data)}
    else:
        section.pop("data", None)


def insert_directive(notebook: Any, line: str) -> int:
    """Put a directive line at the top of the first code cell's directive block.

    A notebook whose first code cell holds code gets a new first cell for it.
    Returns the 1-based index of the cell that holds the line.
    """
    import nbformat

    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code":
            continue
        first = next((x.strip() for x in str(cell.source).splitlines() if x.strip()), "")
        if first.startswith("#seal") or first == "# /// script":
            cell.source = f"{line}\n{cell.source}"
            return index + 1
        break
    notebook.cells.insert(0, nbformat.v4.new_code_cell(line))  # type: ignore[no-untyped-call]
    return 1


def _source(cell: Any) -> str:
    return multiline(cell.get("source", ""))


def code_sources(notebook: Any) -> list[str]:
    """The code cells' sources (from nbformat's nodes or plain JSON alike)."""
    return [_source(cell) for cell in notebook["cells"] if cell.get("cell_type") == "code"]
