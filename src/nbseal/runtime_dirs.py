"""Private runtime folders that name their owner, and the sweep of orphaned ones.

``nbseal run`` and the proxy keep connection files (which hold a kernel's
signing key), ipc sockets and the kernels' scratch working directory in
folders of their own under ``TMPDIR`` (:func:`runtime_base`). Each holds an owner file naming the
process that made it (pid and start time, so a reused pid is not taken for
the owner). A process killed with SIGKILL cannot clean up after itself; the
next nbseal to start removes every such folder whose owners are all gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from nbseal.procfs import stat_fields

__all__ = [
    "IPC_PORTS",
    "OWNER_FILE",
    "make_runtime_dir",
    "owned_by_live_process",
    "owner_pid",
    "process_start_time",
    "runtime_base",
    "sweep_orphans",
    "write_ipc_connection_file",
]

OWNER_FILE = ".nbseal-owner"
# A connection file for ipc sockets names each channel's socket IP-PORT.
IPC_PORTS = {"shell": 1, "iopub": 2, "stdin": 3, "hb": 4, "control": 5}
PREFIX = "nbseal-"
# A kernel's ipc sockets lie three folders below the base (nbseal run's, the
# proxy's, the kernel's: about 50 characters), and a socket's path may not
# exceed 107 bytes (sun_path).
_LONGEST_BASE = 48


def runtime_base() -> Path:
    """Where runtime folders go: ``TMPDIR``, unless its path is too long for sockets.

    Then the first short, writable one of /tmp, /var/tmp and /dev/shm (a
    kernel's sockets in a deep TMPDIR failed with "File name too long").
    """
    base = Path(tempfile.gettempdir())
    if len(str(base)) <= _LONGEST_BASE:
        return base
    for short in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(short) and os.access(short, os.W_OK | os.X_OK):
            return Path(short)
    return base


def process_start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot; None once it is gone."""
    fields = stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None  # a zombie has finished; it only waits to be reaped
    return fields[19]


def make_runtime_dir(prefix: str, parent: Path | None = None, *, name: str = "") -> Path:
    """A fresh private folder (mode 0700) that names this process as its owner.

    With ``name``, the folder is ``prefix + name`` when no such folder exists
    (a path that stays the same from one run to the next), else a random one.
    """
    if name:
        path = Path(parent or runtime_base()) / f"{prefix}{name}"
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
            return _owned(path)
    return _owned(Path(tempfile.mkdtemp(prefix=prefix, dir=parent or runtime_base())))


def _owned(path: Path) -> Path:
    """``path``, its owner file naming this process written."""
    pid = os.getpid()
    (path / OWNER_FILE).write_text(f"{pid} {process_start_time(pid)}\n")
    return path


def owner_pid(path: Path) -> int | None:
    """The pid ``path``'s owner file names, if it has a readable one."""
    try:
        return int((path / OWNER_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def owned_by_live_process(path: Path) -> bool:
    """Whether the process named by ``path``'s owner file still runs.

    A folder without a readable owner file is taken as alive: it may be
    another program's, or one being made right now.
    """
    try:
        pid_text, start = (path / OWNER_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return True
    return process_start_time(pid) == start


def _all_owners_gone(path: Path) -> bool:
    """No owner file in ``path`` or one level below names a live process."""
    if owned_by_live_process(path):
        return False
    with contextlib.suppress(OSError):
        for child in path.iterdir():
            nested = child.is_dir() and not child.is_symlink() and (child / OWNER_FILE).exists()
            if nested and owned_by_live_process(child):
                return False
    return True


def sweep_orphans(parent: Path | None = None, *, also_owned_by: int | None = None) -> list[Path]:
    """Remove this user's runtime folders whose owners were killed; return them.

    ``also_owned_by``: a uid whose folders count as ours too (run by root, a
    build's folder is handed to the sandbox's uid).
    """
    root = Path(parent or runtime_base())
    removed = []
    uids = {os.geteuid()} if also_owned_by is None else {os.geteuid(), also_owned_by}
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            if not entry.name.startswith(PREFIX) or not (entry / OWNER_FILE).is_file():
                continue
            with contextlib.suppress(OSError):
                if entry.lstat().st_uid not in uids or entry.is_symlink():
                    continue
                if _all_owners_gone(entry):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
    return removed


def write_ipc_connection_file(
    path: Path, *, sockets: Path, key: str, kernel_name: str, signature_scheme: str = "hmac-sha256"
) -> None:
    """A connection file whose channels are the ipc sockets ``sockets``-PORT (:data:`IPC_PORTS`).

    Private (mode 0600): it holds the key that signs the kernel's messages.
    A file that already says the same is left as it is: a kernel started
    ahead (sandbox/headstart.py) may be reading it.
    """
    info = {
        "transport": "ipc",
        "ip": str(sockets),
        "key": key,
        "signature_scheme": signature_scheme,
        "kernel_name": kernel_name,
        **{f"{channel}_port": port for channel, port in IPC_PORTS.items()},
    }
    text = json.dumps(info, indent=1)
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
