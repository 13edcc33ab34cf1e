"""Run a command as the root of a new user namespace mapped to unprivileged host ids.

Used when a tool must believe it is root without being host root (or, for
a regular user, without being that user): mmdebstrap, whose packages' maintainer scripts are code
from the notebook's declared environment. The command's uid 0 is host uid
``UID``, its ids 1..COUNT-1 are ``UID+1``...; it holds capabilities only over
its own namespace, so it can neither write host files it does not own
(``/proc/sys`` among them) nor regain host root through setuid files.

Fork; the child unshares its user namespace; the parent maps it, then the
child becomes the namespace's root and executes the command; the parent
waits and exits with its status. Root writes the child's ``uid_map`` and
``gid_map`` itself (util-linux 2.38's ``unshare --map-users`` would go
through newuidmap, which refuses root ids /etc/subuid does not grant it).
A regular user has the setuid newuidmap and newgidmap write them, which
allow only the user's own subordinate ids; the parent runs them, outside
the namespace and without no_new_privs, so the command may run under
bwrap (whose no_new_privs would disable them inside).

Standard library only: it is run by path (``python -I userns.py UID GID
COUNT -- COMMAND...``), not imported, so nothing of nbseal's runs in it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["userns_command"]

_CLONE_NEWUSER = 0x10000000


def userns_command(uid: int, gid: int, count: int) -> list[str]:
    """The prefix that runs a command as the root of a namespace mapped to ``uid``, ``gid``."""
    script = str(Path(__file__).resolve())
    return [sys.executable, "-I", script, str(uid), str(gid), str(count), "--"]


def _child(ready: int, mapped: int, argv: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWUSER) != 0:
        error = ctypes.get_errno()
        os.write(2, f"nbseal userns: unshare(CLONE_NEWUSER): {os.strerror(error)}\n".encode())
        os._exit(125)
    os.write(ready, b"u")
    os.close(ready)
    if os.read(mapped, 1) != b"m":
        os._exit(125)
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"nbseal userns: cannot run {argv[0]}: {exc}\n".encode())
        os._exit(127)


def _map(pid: int, uid: int, gid: int, count: int) -> bool:
    if os.geteuid() == 0:
        Path(f"/proc/{pid}/uid_map").write_text(f"0 {uid} {count}\n")
        Path(f"/proc/{pid}/gid_map").write_text(f"0 {gid} {count}\n")
        return True
    for tool, first in (("newuidmap", uid), ("newgidmap", gid)):
        done = subprocess.run([tool, str(pid), "0", str(first), str(count)], check=False)
        if done.returncode != 0:
            print(f"nbseal userns: {tool} failed (exit code {done.returncode})", file=sys.stderr)
            return False
    return True


def main(args: list[str]) -> int:
    if len(args) < 5 or args[3] != "--" or not all(a.isdigit() for a in args[:3]):
        print("usage: userns.py UID GID COUNT -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    uid, gid, count = (int(a) for a in args[:3])
    if uid == 0 or gid == 0:
        print("nbseal userns: refusing to map the namespace's root to host id 0", file=sys.stderr)
        return 2
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(mapped_w)
        _child(ready_w, mapped_r, args[4:])
    os.close(ready_w)
    os.close(mapped_r)
    # Signals meant for the command (a terminal's ^C, a kill of the group) reach it too.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: os.kill(pid, s))
    if os.read(ready_r, 1) == b"u" and _map(pid, uid, gid, count):
        os.write(mapped_w, b"m")
    os.close(mapped_w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
