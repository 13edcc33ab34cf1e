"""Who a sandbox runs as on the host.

A user namespace maps the sandbox's uid to the uid that created it. When
nbseal runs as root, that would be host uid 0: files owned by root (the
non-namespaced sysctls under ``/proc/sys`` among them) would be writable
from inside, capabilities or not. So a root nbseal never gives a kernel uid
0: bwrap builds the sandbox as root (it needs no user namespace then, and
reaches every path it binds), and the first thing that runs inside is
util-linux's ``setpriv``, which switches to an unprivileged host uid, clears
the supplementary groups, every capability set and the bounding set, and
sets no_new_privs before it executes the kernel.

The uid is, in order: ``$NBSEAL_SANDBOX_UID`` (``UID`` or ``UID:GID``), the
first id of root's subordinate range in ``/etc/subuid`` and ``/etc/subgid``
(ids that belong to root's sandboxes and to nobody else), or ``nobody``
(65534). The paths a sandbox writes (its working directory and its socket
directory; for a build, nbseal's own uv cache and the build's folder) are
handed to that uid; everything else stays root's.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from nbseal.errors import SandboxUnavailableError

__all__ = ["UID_ENV_VAR", "SandboxIdentity", "sandbox_identity"]

UID_ENV_VAR = "NBSEAL_SANDBOX_UID"
_NOBODY = 65534


@dataclass(frozen=True)
class SandboxIdentity:
    """The host uid and gid a sandbox's processes run as (also their ids inside)."""

    host_uid: int
    host_gid: int

    @property
    def drops(self) -> bool:
        """True when nbseal runs as root and the sandbox must switch to ``host_uid``."""
        return os.getuid() != self.host_uid

    def drop_command(self, setpriv: str = "/usr/bin/setpriv") -> list[str]:
        """The command prefix inside the sandbox that leaves root for good (see above)."""
        if not self.drops:
            return []
        return [
            setpriv,
            f"--reuid={self.host_uid}",
            f"--regid={self.host_gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def hand_over(self, path: Path) -> None:
        """Make ``path`` (a directory or file nbseal created) the sandbox user's own."""
        if self.drops:
            os.chown(path, self.host_uid, self.host_gid, follow_symlinks=False)

    def hand_over_tree(self, root: Path) -> None:
        """Make a whole tree nbseal made (a fresh venv, its own uv cache) the sandbox user's."""
        if not self.drops:
            return
        self.hand_over(root)
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                os.chown(
                    os.path.join(folder, name), self.host_uid, self.host_gid, follow_symlinks=False
                )

    def may_write(self, path: Path) -> bool:
        """Whether this uid may create files in ``path`` (a directory) or write it (a file)."""
        if not self.drops:
            return os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0))
        info = path.stat()
        need = 0o3 if path.is_dir() else 0o2  # write (and search, for a folder)
        if info.st_uid == self.host_uid:
            bits = info.st_mode >> 6
        elif info.st_gid == self.host_gid:
            bits = info.st_mode >> 3
        else:
            bits = info.st_mode
        return bits & need == need

    def describe(self) -> str:
        return f"runs as host uid {self.host_uid}"


def _subordinate_start(table: Path) -> int | None:
    """The first id of root's range in /etc/subuid or /etc/subgid."""
    with contextlib.suppress(OSError):
        for line in table.read_text().splitlines():
            owner, _, rest = line.partition(":")
            start, _, count = rest.partition(":")
            if owner in ("root", "0") and start.isdigit() and count.isdigit() and int(count) > 0:
                return int(start)
    return None


def _from_env(value: str) -> tuple[int, int]:
    uid_text, _, gid_text = value.partition(":")
    try:
        uid = int(uid_text)
        gid = int(gid_text) if gid_text else uid
    except ValueError:
        uid = gid = -1
    if uid <= 0 or gid <= 0:
        raise SandboxUnavailableError.not_an_unprivileged_uid(UID_ENV_VAR, value)
    return uid, gid


def sandbox_identity() -> SandboxIdentity:
    """The identity sandboxes started by this process run under."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return SandboxIdentity(uid, gid)
    override = os.environ.get(UID_ENV_VAR)
    if override:
        host_uid, host_gid = _from_env(override)
    else:
        sub_uid = _subordinate_start(Path("/etc/subuid"))
        sub_gid = _subordinate_start(Path("/etc/subgid"))
        if sub_uid is not None and sub_gid is not None:
            host_uid, host_gid = sub_uid, sub_gid
        else:
            host_uid, host_gid = _NOBODY, _NOBODY
    return SandboxIdentity(host_uid, host_gid)
