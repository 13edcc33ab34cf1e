"""Which files of its project a notebook's cells open: its ``#seal data`` and shares.

Every string a cell holds that names a file or folder of the project (or a
constant ``os.path.join``), and every pattern of file names a cell expands
(``glob.glob("data/*.csv")``). Nothing outside the project's root is taken.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbseal.adopt.imports import string_literals
from nbseal.directives import data_name_ok

__all__ = ["DATA_LIMIT", "FOLDER_LIMIT", "DataFile", "data_files"]

# Files bigger than this are not declared as data (say so instead).
DATA_LIMIT = 200 * 1024 * 1024
# A referenced folder is declared file by file up to this many files.
FOLDER_LIMIT = 50


@dataclass(frozen=True)
class DataFile:
    name: str  # as the cells open it, relative to the notebook
    path: Path  # on this machine
    cell: int


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


def data_files(
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
