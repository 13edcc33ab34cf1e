"""Notebook files: reading, atomic writing, and the ``metadata.nbseal`` section.

This module is the only one that touches ``metadata.nbseal``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from nbseal.errors import NotebookError
from nbseal.fsutil import atomic_write_text
from nbseal.kernel.kernelspec import DISPLAY_NAME, KERNEL_NAME

__all__ = ["mark_kernel", "read_notebook", "seal_metadata", "write_notebook"]


def read_notebook(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotebookError(f"no notebook at {path}", hint="check the path") from exc
    except OSError as exc:
        raise NotebookError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        raise NotebookError(
            f"{path} is not a notebook: it is not valid JSON",
            hint="open it in Jupyter or restore it from version control",
        ) from exc
    except Exception as exc:
        raise NotebookError(f"{path} is not a valid notebook: {exc}") from exc


def write_notebook(notebook: Any, path: Path) -> None:
    """Write atomically: an interrupted write never leaves a truncated notebook."""
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
        raise NotebookError("metadata.nbseal of this notebook is not an object")
    return section
