"""Whether mmdebstrap can run here, as this user: subordinate ids, user namespaces."""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbseal.backends.debian.sources import _INSTALL_HINT
from nbseal.errors import DebianUnavailableError
from nbseal.sandbox.userns import userns_command

# ---------------------------------------------------------------------------
# mmdebstrap
# ---------------------------------------------------------------------------
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
# A Debian tree has files of ids up to 65534 (nobody); mmdebstrap maps one
# range of subordinate ids to the namespace's ids 0, 1, 2, ...
SUBID_NEEDED = 65536
USERNS_SYSCTLS = (
    ("/proc/sys/kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"),
    ("/proc/sys/user/max_user_namespaces", "0", "user.max_user_namespaces=15000"),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "kernel.apparmor_restrict_unprivileged_userns=0",
    ),
)


@dataclass(frozen=True)
class SubidRange:
    """One line of /etc/subuid or /etc/subgid that names the user."""

    by: str  # the user's name or uid, as the line names it
    start: int
    count: int


def subid_ranges(text: str, user: str, uid: int) -> list[SubidRange]:
    """The ranges ``text`` (/etc/subuid or /etc/subgid) grants ``user`` (by name or uid)."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        with contextlib.suppress(ValueError):
            ranges.append(SubidRange(fields[0], int(fields[1]), int(fields[2])))
    return ranges


def unprivileged_problem(
    user: str, uid: int, files: Sequence[Path] = SUBID_FILES
) -> DebianUnavailableError | None:
    """What in /etc/subuid and /etc/subgid keeps ``user`` from running mmdebstrap, if anything.

    A file may name the user or the uid; each needs a range of at least
    65536 ids, as ``useradd`` grants by default.
    """
    missing, short, dropped = [], [], []
    first = 100_000  # above every range granted: a free one to suggest
    for path in files:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            return DebianUnavailableError.subids_unreadable(user, path, str(exc))
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                first = max(first, int(fields[1]) + int(fields[2]))
        ranges = subid_ranges(text, user, uid)
        if not ranges:
            missing.append(str(path))
        elif max(r.count for r in ranges) < SUBID_NEEDED:
            short.append(str(path))
            option = "--del-subuids" if path.name == "subuid" else "--del-subgids"
            dropped += [f"{option} {r.start}-{r.start + r.count - 1}" for r in ranges]
    ids = f"{first}-{first + SUBID_NEEDED - 1}"
    root = uid == 0
    # Root can be told to run a command; a user must ask, and may run as root instead.
    ask = "run" if root else "ask an administrator to run"
    instead = "" if root else ", or run nbseal as root"
    fix = (
        f"{ask} `usermod --add-subuids {ids} --add-subgids {ids} "
        f"{user}` (or another {SUBID_NEEDED} ids no other user has){instead}"
    )
    why = (
        "as root, nbseal runs mmdebstrap in a user namespace whose ids are root's "
        "subordinate ids, so that packages' maintainer scripts never run as host root"
        if root
        else "nbseal builds a Debian tree in a user namespace that maps its users "
        f"(root, _apt, nobody, ...) to subordinate ids of {user}"
    )
    if missing:
        return DebianUnavailableError.no_subids(user, missing, why=why, hint=fix)
    if short:
        return DebianUnavailableError.too_few_subids(
            user,
            short,
            needed=SUBID_NEEDED,
            hint=f"{ask} `usermod {' '.join(dropped)} --add-subuids "
            f"{ids} --add-subgids {ids} {user}` (a build uses one range){instead}",
        )
    return None


@dataclass(frozen=True)
class BuildIds:
    """The host ids a root build's user namespace maps its ids 0..count-1 to."""

    uid: int
    gid: int
    count: int = SUBID_NEEDED


def build_ids(user: str, uid: int, files: Sequence[Path] = SUBID_FILES) -> BuildIds:
    """``user``'s first range of at least 65536 ids in /etc/subuid and /etc/subgid.

    A build's user namespace maps its ids 0..65535 to them. Raises
    :class:`DebianUnavailableError` naming the ``usermod`` that adds a
    range when there is none.
    """
    problem = unprivileged_problem(user, uid, files)
    if problem is not None:
        raise problem
    starts = []
    for path in files:
        ranges = subid_ranges(path.read_text(), user, uid)
        starts.append(next(r.start for r in ranges if r.count >= SUBID_NEEDED))
    return BuildIds(starts[0], starts[1])


def root_build_ids(files: Sequence[Path] = SUBID_FILES) -> BuildIds:
    """Root's build ids (see :func:`build_ids`)."""
    return build_ids("root", 0, files)


def current_build_ids() -> BuildIds:
    """The build ids of the user running nbseal."""
    return build_ids(_user_name(), os.getuid())


def _userns_hint() -> str:
    for path, blocked, setting in USERNS_SYSCTLS:
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == blocked:
                return (
                    f"this kernel disallows unprivileged user namespaces ({path} is {blocked}): "
                    f"ask an administrator to run `sysctl -w {setting}`, or run nbseal as root"
                )
    return (
        "unprivileged user namespaces must be allowed (`sysctl -w "
        "kernel.unprivileged_userns_clone=1` on older Debian, `sysctl -w "
        "kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04; in a container, "
        "a seccomp profile that allows unshare), or run nbseal as root"
    )


@functools.lru_cache(maxsize=1)
def check_mmdebstrap() -> str:
    """The mmdebstrap to use; raises :class:`DebianUnavailableError` saying why not.

    A build runs as the root of a user namespace mapped to 65536 subordinate
    ids of the user (root included) in /etc/subuid and /etc/subgid; a
    regular user needs newuidmap/newgidmap (package uidmap) to map them and
    a kernel that lets users create user namespaces. This checks each, then
    runs ``mmdebstrap --unshare-helper /bin/true`` in such a namespace,
    which creates the same namespaces a build does.
    """
    found = shutil.which("mmdebstrap")
    if found is None:
        raise DebianUnavailableError.missing_tool("mmdebstrap", hint=_INSTALL_HINT)
    for tool in ("dpkg", "dpkg-query", "dpkg-scanpackages"):
        if shutil.which(tool) is None:
            raise DebianUnavailableError.missing_tool(
                tool, hint="install dpkg-dev (`apt-get install dpkg-dev`)"
            )
    unprivileged = os.geteuid() != 0
    if unprivileged:
        user = _user_name()
        for tool in ("newuidmap", "newgidmap"):
            if shutil.which(tool) is None:
                raise DebianUnavailableError.missing_tool(
                    tool,
                    user=user,
                    why="nbseal maps a Debian build's ids to the user's subordinate ids with it",
                    hint="install uidmap (`apt-get install uidmap`), or run nbseal as root",
                )
    ids = current_build_ids()
    # The namespaces a build uses: user (nbseal's, see sandbox/userns.py), then
    # mmdebstrap's mount, pid, uts and ipc.
    done = subprocess.run(
        [*userns_command(ids.uid, ids.gid, ids.count), found, "--unshare-helper", "/bin/true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        if unprivileged:
            raise DebianUnavailableError.no_user_namespace(
                _user_name(), done.stderr.strip(), hint=_userns_hint()
            )
        raise DebianUnavailableError.no_namespaces(done.stderr.strip())
    return found


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
