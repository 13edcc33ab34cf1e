"""Placing names in a working directory that a hostile kernel can write.

Every kernel of a notebook shares one writable working directory, so any
path below it may have been turned into a symbolic link by a cell before
nbseal touches it (``os.symlink("/root", "p")``, then ``#seal data p/x``).
nbseal therefore never resolves a path there by name: it walks from an open
descriptor of the directory, one component at a time, with ``O_NOFOLLOW``,
so a planted link or a file where a folder should be stops the walk instead
of leading it out. The links it creates and removes are handled the same way,
and a link is removed only if it is still the one nbseal made.

Data files are not mounted into the directory at all: each is bound
read-only at its own store path, and the working directory holds a link to
that path. Whatever a cell does to the link changes only its own view.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path, PurePosixPath

from nbseal.errors import DataPlacementError

__all__ = ["place_link", "remove_link"]

_DIR_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(name: str) -> tuple[str, ...]:
    parts = PurePosixPath(name).parts
    if not parts or parts[0] == "/" or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a relative path without '..': {name!r}")
    return parts


def _walk(root: Path, parts: tuple[str, ...], name: str, owner: tuple[int, int] | None) -> int:
    """An fd of the folder that will hold ``parts[-1]``, creating folders on the way.

    With ``owner`` None nothing is created: a missing folder raises
    FileNotFoundError.
    """
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            if owner is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                    os.chown(part, *owner, dir_fd=fd, follow_symlinks=False)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise DataPlacementError(name, part, root) from exc
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def place_link(root: Path, name: str, target: Path, *, owner: tuple[int, int]) -> None:
    """Make ``root/name`` a symbolic link to ``target``, replacing an earlier one.

    Folders on the way are created (and given to ``owner``, the sandbox's
    uid and gid); a link or a file found where a folder should be raises
    :class:`DataPlacementError`.
    """
    parts = _components(name)
    fd = _walk(root, parts, name, owner)
    try:
        temporary = f".{parts[-1]}.nbseal-{secrets.token_hex(4)}"
        os.symlink(target, temporary, dir_fd=fd)
        try:
            # rename(2) replaces a link or file at the name itself, never
            # what a link there points to.
            os.replace(temporary, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as exc:
            os.unlink(temporary, dir_fd=fd)
            raise DataPlacementError(name, parts[-1], root) from exc
    finally:
        os.close(fd)


def remove_link(root: Path, name: str, target: Path) -> None:
    """Remove ``root/name`` if it is still a link to ``target``; never anything else."""
    try:
        parts = _components(name)
        fd = _walk(root, parts, name, owner=None)
    except (OSError, ValueError, DataPlacementError):
        return  # gone, or turned into something that is not nbseal's
    try:
        with contextlib.suppress(OSError):
            if os.readlink(parts[-1], dir_fd=fd) == str(target):
                os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)
