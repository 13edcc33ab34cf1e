"""What nbseal adds to a cell's error when the sandbox is the likely cause.

A notebook that reads ``data/bikes.csv`` next to it fails in the sandbox with
a bare ``FileNotFoundError``: the kernel's working directory shows declared
data only. When the file the error names exists beside the notebook on the
host, the cell gets one more line that says so and how to declare it.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["missing_file_hint"]

_FILE_ERRORS = {"FileNotFoundError", "IOError", "OSError", "NotADirectoryError"}
# "[Errno 2] No such file or directory: 'x'" (open, pandas 2, numpy, PIL) and
# "File b'x' does not exist" / "[Errno 2] File x does not exist: 'x'" (pandas 0.x, 1.x).
_NAMED = (
    re.compile(r"No such file or directory: b?'([^']+)'"),
    re.compile(r"File b?'([^']+)' does not exist"),
    re.compile(r"does not exist: b?'([^']+)'"),
)


def _named_path(evalue: str) -> str | None:
    for pattern in _NAMED:
        if (match := pattern.search(evalue)) is not None:
            return match.group(1)
    return None


def missing_file_hint(error: dict[str, Any], notebook_dir: Path, notebook: str) -> str | None:
    """A hint for an ``error`` output whose missing file is on the host, else None."""
    if str(error.get("ename", "")) not in _FILE_ERRORS:
        return None
    name = _named_path(str(error.get("evalue", "")))
    if name is None or name.startswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if not parts or not (notebook_dir / name).exists():
        return None
    folder = (notebook_dir / name).is_dir()
    declare = (
        f"`#seal share {name}` (bound read-only; `#seal share {name} rw` to write)"
        if folder or ".." in parts
        else f"`nbseal data add {notebook} {name}`, which adds a checked "
        f"`#seal data {name} <- {name} sha256:...` line"
    )
    return (
        f"nbseal: {name} is next to the notebook, but the sandbox shows the kernel only "
        f"what the notebook declares. Declare it with {declare}.\n"
    )
