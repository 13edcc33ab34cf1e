"""File-system helpers: atomic writes and read-only trees."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = [
    "atomic_write_text",
    "make_tree_readonly",
    "remove_tree",
    "tree_size",
]

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half.

    A symbolic link stays a link: its target is written. A path that is not
    a regular file (``-o /dev/null``, ``/dev/stdout``, a FIFO) is written
    into as it is: renaming a file over it would replace the device itself,
    for everyone on the machine when run by root.
    """
    path = Path(os.path.realpath(path)) if path.is_symlink() else path
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_tree_readonly(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*filenames, *dirnames]:
            _clear_write(Path(dirpath) / name)
    _clear_write(root)


def _clear_write(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~_WRITE_BITS)


def remove_tree(root: Path) -> None:
    """Remove a tree even when its entries were made read-only (a file: just that)."""
    if not root.exists() and not root.is_symlink():
        return
    if root.is_symlink() or not root.is_dir():
        root.unlink()
        return
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.chmod(path, 0o755)
    os.chmod(root, 0o755)
    shutil.rmtree(root)


def tree_size(root: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            info = (Path(dirpath) / name).lstat()
            # Hard links into uv's cache count once.
            ident = (info.st_dev, info.st_ino)
            if ident not in seen:
                seen.add(ident)
                total += info.st_size
    return total
