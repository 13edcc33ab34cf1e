"""Debian root file systems as trees of files: unpack, inspect, share.

What the Debian backend does to a tree once mmdebstrap made it, with no
mmdebstrap or apt involved: unpack mmdebstrap's tarball
(:func:`unpack_rootfs`), read which packages a tree holds
(:func:`installed_packages`), and hard-link a new tree's files to identical
files of published trees (:func:`share_identical_files`), so that environments
that share most packages share most of their disk.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import stat
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbseal.digests import sha256_file
from nbseal.errors import DebianError

__all__ = [
    "SharingResult",
    "disk_usage",
    "installed_packages",
    "share_identical_files",
    "unpack_rootfs",
]


# ---------------------------------------------------------------------------
# the tarball mmdebstrap writes
# ---------------------------------------------------------------------------
# Device nodes and fifos are not unpacked: bwrap gives a kernel its own /dev,
# and a regular user could not create them anyway.
_SKIPPED_TYPES = frozenset({tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE})


class _OutsideTheTree(tarfile.TarError):
    """A member that would be written, or hard-link to a file, outside the tree."""

    def __init__(self, member: tarfile.TarInfo, path: str) -> None:
        super().__init__(f"{member.name!r} would reach {path!r}, outside the tree")


def _inside(dest: str, path: str) -> bool:
    """Whether ``path``, its links followed as far as they exist now, stays in ``dest``."""
    real_dest = os.path.realpath(dest)
    return os.path.commonpath([real_dest, os.path.realpath(path)]) == real_dest


def _rootfs_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``tar`` filter for a root file system's tarball.

    The ``tar`` filter (PEP 706) strips leading slashes, refuses members
    that would land outside ``dest``, and clears setuid, setgid, sticky and
    group/other write bits. Symbolic links keep their targets, absolute ones
    too: inside a root file system ``/usr/bin/x`` means the tree's, and the
    kernel sees them only from inside the tree. Hard links must name a member
    of the archive inside the tree, symbolic links on the way followed (the
    filter leaves them unchecked).
    """
    if member.type in _SKIPPED_TYPES:
        return None
    if member.islnk():
        target = posixpath.normpath(member.linkname)
        if posixpath.isabs(target) or target == ".." or target.startswith("../"):
            raise _OutsideTheTree(member, target)
        if not _inside(dest, os.path.join(dest, target)):
            raise _OutsideTheTree(member, os.path.realpath(os.path.join(dest, target)))
    return _tar_filter(member, dest)


_CLEARED_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


def _own_tar_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """PEP 706's ``tar`` filter, for Pythons before it (3.11.2, Debian 12's).

    Called as each member is reached, like the real one, so a symbolic link
    unpacked earlier is followed when the next member's place is checked.
    """
    member = copy.copy(member)
    member.name = member.name.lstrip("/")
    place = os.path.join(dest, member.name)
    if not _inside(dest, place):
        raise _OutsideTheTree(member, os.path.realpath(place))
    if member.mode is not None:
        member.mode &= ~_CLEARED_BITS & 0o7777
    return member


_PEP706 = hasattr(tarfile, "tar_filter")
_tar_filter = getattr(tarfile, "tar_filter", _own_tar_filter)


def _filtered(tar: tarfile.TarFile, dest: str) -> Iterator[tarfile.TarInfo]:
    """The archive's members through :func:`_rootfs_member`, one at a time as extracted."""
    for member in tar:
        kept = _rootfs_member(member, dest)
        if kept is not None:
            yield kept


def unpack_rootfs(archive: Path, dest: Path) -> None:
    """Unpack mmdebstrap's tarball ``archive`` into ``dest`` (new), owned by this user.

    See :func:`_rootfs_member` for what is changed on the way. As root the
    tar's owners are kept (tarfile restores them only for root), by number:
    the tree's ``_apt`` is not the host's.
    """
    dest.mkdir(mode=0o755)
    try:
        with tarfile.open(archive, errorlevel=2) as tar:
            if _PEP706:
                tar.extractall(dest, filter=_rootfs_member, numeric_owner=True)
            else:
                # No filters in this Python: the same checks, member by member.
                tar.extractall(dest, members=_filtered(tar, str(dest)), numeric_owner=True)
    except tarfile.TarError as exc:
        raise DebianError.cannot_unpack(archive, str(exc)) from exc


# ---------------------------------------------------------------------------
# what a tree holds
# ---------------------------------------------------------------------------
def installed_packages(root: Path) -> set[tuple[str, str, str]]:
    """(name, version, architecture) of every package dpkg installed in ``root``."""
    done = subprocess.run(
        [
            "dpkg-query",
            "-W",
            f"--admindir={root / 'var/lib/dpkg'}",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DebianError.cannot_list(root, done.stderr.strip())
    result = set()
    for line in done.stdout.splitlines():
        status, name, version, arch = line.split("\t")
        if status.startswith("ii"):
            result.add((name, version, arch))
    return result


# ---------------------------------------------------------------------------
# sharing files between trees
# ---------------------------------------------------------------------------
def disk_usage(paths: Sequence[Path]) -> int:
    """Bytes allocated by ``paths`` together; a hard-linked file counts once (like du)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in paths:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*filenames, *dirnames]:
                info = os.lstat(os.path.join(dirpath, name))
                ident = (info.st_dev, info.st_ino)
                if ident not in seen:
                    seen.add(ident)
                    total += info.st_blocks * 512
    return total


@dataclass(frozen=True)
class SharingResult:
    """What :func:`share_identical_files` did to a new tree."""

    files: int  # regular, non-empty files in the new tree
    linked: int  # of them, now hard links to an identical file
    saved_bytes: int  # disk blocks freed
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.linked} of {self.files} files hard-linked to identical files, "
            f"{self.saved_bytes / 2**20:.0f} MiB saved in {self.seconds:.1f} s"
        )


# Everything an inode carries that a path name does not: files that agree on
# all of it (and on content and extended attributes) can be one inode.
_FileKey = tuple[int, int, int, int, int]


def _file_key(info: os.stat_result) -> _FileKey:
    return (info.st_size, info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns)


def _regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Non-empty regular files below ``root``, with their lstat; no symlink is followed."""
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        info = entry.stat(follow_symlinks=False)
                        if info.st_size > 0:
                            yield entry.path, info
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed meanwhile (a published tree being collected)


def _xattrs(path: str) -> dict[str, bytes]:
    return {
        name: os.getxattr(path, name, follow_symlinks=False)
        for name in os.listxattr(path, follow_symlinks=False)
    }


def _link_over(path: str, target: str, opened: dict[str, int]) -> bool:
    """Replace ``path`` by a hard link to ``target`` in one rename; False if it cannot be.

    ``path``'s directory is made writable for it when it is not (a read-only
    tree of a regular user: root needs no write bit); ``opened`` records the
    modes to restore.
    """
    folder = os.path.dirname(path)
    if folder not in opened and not os.access(folder, os.W_OK):
        try:
            mode = stat.S_IMODE(os.lstat(folder).st_mode)
            os.chmod(folder, mode | stat.S_IWUSR)
        except OSError:
            return False
        opened[folder] = mode
    tmp = f"{folder}/.nbseal-link-{uuid.uuid4().hex[:12]}"
    try:
        os.link(target, tmp)
    except OSError:  # EMLINK, EXDEV, a published tree collected meanwhile ...
        return False
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


def share_identical_files(tree: Path, published: Sequence[Path]) -> SharingResult:
    """Hard-link files of ``tree`` to identical files of ``published`` trees (or of itself).

    Identical means: regular, non-empty, same size, mode, owner, group and
    modification time, same extended attributes (file capabilities, ACLs)
    and the same bytes. Only ``tree`` changes: each such file of it is
    replaced, by an atomic rename, with a link to the other inode; the
    published trees are only read, so a kernel running from one of them sees
    nothing happen. Symlinks, directories and special files stay as they are.

    Meant for read-only trees: call it after ``tree`` was made read-only
    (its modes are then final, and equal to the published trees' ones), so
    no chmod ever reaches an inode that another tree shares. A regular user
    cannot create links in read-only directories: each directory of ``tree``
    that gets one is made writable for it and read-only again at the end
    (directories are never shared). Candidates are
    found by an index on (size, mode, owner, mtime) built from the published
    trees, restricted to keys the new tree has; within a key, files are
    compared by SHA-256 (each file read once).
    """
    started = time.monotonic()
    try:
        device = tree.stat().st_dev
    except OSError:
        return SharingResult(0, 0, 0, 0.0)
    new = list(_regular_files(tree))
    keys = {_file_key(info) for _, info in new}
    # key -> distinct inodes (one path each) that a new file may become
    candidates: dict[_FileKey, dict[int, str]] = {}
    for other in published:
        for path, info in _regular_files(other):
            key = _file_key(info)
            if key in keys and info.st_dev == device:
                candidates.setdefault(key, {}).setdefault(info.st_ino, path)
    linked = 0
    digests: dict[int, str] = {}  # inode -> SHA-256, each file read at most once
    replaced: dict[int, int] = {}  # old inode of the new tree -> names replaced
    blocks: dict[int, tuple[int, int]] = {}  # old inode -> (st_nlink, bytes allocated)
    opened: dict[str, int] = {}  # directories made writable for a while -> their mode
    try:
        for path, info in new:
            group = candidates.setdefault(_file_key(info), {})
            if info.st_ino in group:
                continue  # already that inode (a second name of it)
            try:
                mine = digests.get(info.st_ino) or sha256_file(path)
                digests[info.st_ino] = mine
                attributes = _xattrs(path)
                for ino, target in group.items():
                    if ino not in digests:
                        digests[ino] = sha256_file(target)
                    if (
                        digests[ino] == mine
                        and _xattrs(target) == attributes
                        and _link_over(path, target, opened)
                    ):
                        linked += 1
                        replaced[info.st_ino] = replaced.get(info.st_ino, 0) + 1
                        blocks[info.st_ino] = (info.st_nlink, info.st_blocks * 512)
                        break
                else:
                    group[info.st_ino] = path  # later files of the tree may share it
            except OSError:
                continue  # unreadable or gone: keep the file as it is
    finally:
        for folder, mode in opened.items():
            with contextlib.suppress(OSError):
                os.chmod(folder, mode)
    saved = sum(size for ino, (nlink, size) in blocks.items() if replaced[ino] >= nlink)
    return SharingResult(len(new), linked, saved, time.monotonic() - started)
