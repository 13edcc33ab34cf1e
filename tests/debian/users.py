"""Regular users for the unprivileged Debian tests, and running nbseal as one of them.

Only root can create users, so the tests using these skip when not root.
The users are left in place (useradd is not undone): a second run reuses them.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from nbseal.backends.debian import SUBID_FILES, SUBID_NEEDED, subid_ranges

REPO = Path(__file__).resolve().parents[2]
CI_USER = "nbseal-ci"  # subordinate ids: may build
NO_SUBIDS_USER = "nbseal-nosubid"  # none: must be told why it cannot


def _ranges(user: pwd.struct_passwd) -> list[list[tuple[int, int]]]:
    """(start, count) of the user's ranges in /etc/subuid and in /etc/subgid."""
    result = []
    for path in SUBID_FILES:
        text = path.read_text() if path.exists() else ""
        result.append([(r.start, r.count) for r in subid_ranges(text, user.pw_name, user.pw_uid)])
    return result


def _free_range() -> tuple[int, int]:
    """65536 ids above every range /etc/subuid and /etc/subgid grant."""
    top = 100_000
    for path in SUBID_FILES:
        for line in path.read_text().splitlines() if path.exists() else []:
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                top = max(top, int(fields[1]) + int(fields[2]))
    return top, top + SUBID_NEEDED - 1


def ensure_user(name: str, *, subids: bool) -> pwd.struct_passwd:
    """The user ``name``, created if missing, with (or without) 65536 subordinate ids."""
    for path in SUBID_FILES:  # usermod --add-subuids needs them to exist
        if not path.exists():
            path.touch(mode=0o644)
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--user-group", "--no-create-home", "--shell", "/bin/sh"]
        if not subids:  # Debian's useradd grants SUB_UID_COUNT ids (65536) by default
            argv += ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]
        subprocess.run([*argv, name], check=True, capture_output=True)
        user = pwd.getpwnam(name)
    uids, gids = _ranges(user)
    if subids and (not uids or not gids):
        ids = "-".join(str(n) for n in _free_range())
        subprocess.run(
            ["usermod", "--add-subuids", ids, "--add-subgids", ids, name],
            check=True,
            capture_output=True,
        )
    if not subids and (uids or gids):
        argv = ["usermod"]
        argv += [f"--del-subuids={s}-{s + n - 1}" for s, n in uids]
        argv += [f"--del-subgids={s}-{s + n - 1}" for s, n in gids]
        subprocess.run([*argv, name], check=True, capture_output=True)
    return user


def private_dir(user: pwd.struct_passwd, prefix: str) -> Path:
    """A new directory only ``user`` can enter (mode 0700), as a home on Debian 12 is."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _blocked(path: Path) -> Path | None:
    """The topmost directory above ``path`` that other users cannot traverse, if any."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


def _needed() -> list[Path]:
    """What running this checkout's nbseal reads: the repository, the venv, its base Python."""
    paths = {REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    paths.add(Path(os.path.realpath(sys.executable)).parent)
    for path in paths:
        if os.stat(path).st_mode & 0o005 != 0o005:
            raise RuntimeError(
                f"{path} must be readable by other users for the test users to run nbseal "
                f"(chmod o+rx; a checkout made with umask 022 is)"
            )
    # Only the outermost of nested paths needs a mount.
    return sorted(p for p in paths if not any(q in p.parents for q in paths))


def as_user_argv(
    user: pwd.struct_passwd,
    argv: Sequence[str],
    env: Mapping[str, str],
    stash: Path,
    *,
    offline: bool = False,
) -> list[str]:
    """``argv`` run as ``user`` with exactly ``env``, seeing this checkout and its Python.

    A Python installed below a directory other users cannot enter (pyenv in
    /root here) is made reachable for that command only: in a private mount
    namespace, a tmpfs (mode 0755) covers the closed directory and the
    needed folders are bound back onto it, by way of mount points in
    ``stash`` (an empty folder). Nothing of the host changes. ``offline``:
    in a network namespace of its own, with no network at all.
    """
    command = ["runuser", "-u", user.pw_name, "--", "env", "-i"]
    command += [f"{key}={value}" for key, value in env.items()]
    covers: dict[Path, list[Path]] = {}
    for path in _needed():
        top = _blocked(path)
        if top is not None:
            covers.setdefault(top, []).append(path)
    unshare = ["unshare", *(["--net"] if offline else [])]
    if not covers:
        return [*unshare, *command, *argv] if offline else [*command, *argv]
    script = ["set -e"]
    for number, (top, paths) in enumerate(sorted(covers.items())):
        keeps = [stash / f"{number}-{index}" for index in range(len(paths))]
        for path, keep in zip(paths, keeps, strict=True):
            keep.mkdir()
            script.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(keep))}")
        script.append(f"mount -t tmpfs -o mode=0755 nbseal-tests {shlex.quote(str(top))}")
        for path, keep in zip(paths, keeps, strict=True):
            script.append(f"mkdir -p {shlex.quote(str(path))}")
            script.append(f"mount --bind {shlex.quote(str(keep))} {shlex.quote(str(path))}")
    script.append("exec " + shlex.join([*command, *argv]))
    return [*unshare, "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)]


def run_as(
    user: pwd.struct_passwd,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    timeout: float,
    offline: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``user`` (see :func:`as_user_argv`); its output as text."""
    stash = Path(tempfile.mkdtemp(prefix="nbseal-stash-"))
    try:
        return subprocess.run(
            as_user_argv(user, argv, env, stash, offline=offline),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        shutil.rmtree(stash, ignore_errors=True)  # empty: the mounts went with the namespace


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A login-like environment for the venv's programs: HOME, PATH, LANG and ``extra``."""
    venv_bin = Path(sys.prefix) / "bin"
    return {
        "HOME": str(home),
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "JUPYTER_PLATFORM_DIRS": "1",
        **extra,
    }
