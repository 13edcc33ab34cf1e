"""How much a sandbox may take: tasks, memory and scratch space.

Without limits a cell can fork without bound, allocate until the host swaps
and fill every tmpfs the sandbox has. Each sandbox gets default caps, which a
notebook raises (or lowers) with ``#seal limit``, shown by ``#seal describe``:

- **tasks** (processes and threads): ``RLIMIT_NPROC``, set inside the sandbox
  by util-linux's ``prlimit`` once the kernel's uid is final. Run by a regular
  user, the sandbox has its own user namespace, where the count is the
  sandbox's own; run by root, the kernel's unprivileged uid is shared by every
  sandbox on the host, so the cap bounds them together.
- **scratch**: the size of each tmpfs (``/tmp``, ``$HOME``, ``/dev/shm``),
  bwrap's ``--size``.
- **memory**: a memory cgroup around the sandbox, where nbseal may create one
  (root, or a delegated cgroup v2 subtree); elsewhere it is not enforced, and
  :func:`memory_cgroup_parent` says why. tmpfs pages count against it too.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from nbseal.runtime_dirs import process_start_time

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "MemoryCgroup",
    "format_size",
    "memory_cgroup_parent",
    "parse_size",
]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$")
# Below these a kernel cannot even start: a limit so low is a typo.
MIN_TASKS = 16
MIN_MEMORY = 64 * 2**20
MIN_SCRATCH = 1 * 2**20
# The prefix of the cgroups nbseal makes, one per sandbox.
CGROUP_PREFIX = "nbseal-"


def parse_size(text: str) -> int:
    """``512M``, ``2G``, ``1.5GiB``, ``1048576`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size (e.g. 512M, 2G)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])


def format_size(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]} {unit}iB"
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """A sandbox's caps; every field is enforced where the host allows."""

    tasks: int = 1024
    memory: int = 8 * 2**30
    scratch: int = 2 * 2**30

    def __post_init__(self) -> None:
        if self.tasks < MIN_TASKS:
            raise ValueError(f"processes={self.tasks} is below {MIN_TASKS}")
        if self.memory < MIN_MEMORY:
            raise ValueError(f"memory={format_size(self.memory)} is below 64 MiB")
        if self.scratch < MIN_SCRATCH:
            raise ValueError(f"tmp={format_size(self.scratch)} is below 1 MiB")

    def with_settings(self, settings: dict[str, str]) -> Limits:
        """These limits changed by ``#seal limit`` settings (``processes=``, ...).

        Raises ValueError naming the setting that is wrong.
        """
        changes: dict[str, int] = {}
        for key, value in settings.items():
            if key == "processes":
                if not value.isdigit():
                    raise ValueError(f"processes={value!r} is not a whole number")
                changes["tasks"] = int(value)
            elif key in ("memory", "tmp"):
                changes["memory" if key == "memory" else "scratch"] = parse_size(value)
            else:
                raise ValueError(f"{key!r} is not a limit (processes, memory or tmp)")
        return replace(self, **changes)

    def describe(self) -> str:
        return (
            f"limits: {self.tasks} processes, memory {format_size(self.memory)}, "
            f"tmp {format_size(self.scratch)} each"
        )

    def prlimit_command(self, prlimit: str = "/usr/bin/prlimit") -> list[str]:
        """The command prefix inside the sandbox that caps its tasks."""
        return [prlimit, f"--nproc={self.tasks}:{self.tasks}", "--"]


DEFAULT_LIMITS = Limits()


# ---------------------------------------------------------------------------
# memory cgroups
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hierarchy:
    """Where this process's memory cgroup is, and how to write a limit there."""

    directory: Path
    limit_file: str  # memory.max (v2) or memory.limit_in_bytes (v1)
    swap_file: str | None  # memory.swap.max (v2) or memory.memsw.limit_in_bytes (v1)


def _own_cgroup(proc_self_cgroup: str, *, v2: bool) -> str | None:
    for line in proc_self_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if v2 and number == "0" and controllers == "":
            return path
        if not v2 and "memory" in controllers.split(","):
            return path
    return None


def _hierarchy() -> Hierarchy | str:
    """This process's memory hierarchy, or why nbseal cannot make cgroups in it."""
    try:
        mine = Path("/proc/self/cgroup").read_text()
    except OSError as exc:
        return f"cannot read /proc/self/cgroup ({exc.strerror})"
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():  # cgroup v2, unified
        path = _own_cgroup(mine, v2=True)
        if path is None:
            return "this process is in no cgroup v2"
        directory = root / path.lstrip("/")
        controllers = (directory / "cgroup.subtree_control").read_text().split()
        if "memory" not in controllers:
            # A process's own cgroup may not both hold processes and delegate
            # controllers ("no internal processes"): its parent must.
            return f"the memory controller is not enabled below {directory}"
        return Hierarchy(directory, "memory.max", "memory.swap.max")
    path = _own_cgroup(mine, v2=False)
    if path is None or not (root / "memory").is_dir():
        return "the memory controller is not mounted"
    return Hierarchy(
        root / "memory" / path.lstrip("/"), "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
    )


def memory_cgroup_parent() -> Hierarchy | str:
    """Where sandboxes' memory cgroups go, or why their memory is not capped here."""
    found = _hierarchy()
    if isinstance(found, str):
        return found
    if not os.access(found.directory, os.W_OK):
        return f"{found.directory} is not writable by this user"
    return found


class MemoryCgroup:
    """One sandbox's memory cgroup: made before it starts, removed after it ends."""

    def __init__(self, where: Hierarchy, limit: int) -> None:
        self.hierarchy = where
        # Named after the process that makes it, so that no other nbseal takes
        # it for a leftover while it is still empty (between mkdir and start).
        pid = os.getpid()
        maker = f"{pid}-{process_start_time(pid)}"
        self.path = where.directory / f"{CGROUP_PREFIX}{maker}-{os.urandom(4).hex()}"
        self.limit = limit

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def create(self) -> None:
        """Make the cgroup with its limit (swap included, where the kernel allows)."""
        sweep_stale_cgroups(self.hierarchy.directory)
        self.path.mkdir()
        try:
            (self.path / self.hierarchy.limit_file).write_text(str(self.limit))
            if self.hierarchy.swap_file is not None:
                swap = self.path / self.hierarchy.swap_file
                # v2 counts swap apart (0: none); v1 counts memory + swap together.
                value = "0" if self.hierarchy.limit_file == "memory.max" else str(self.limit)
                with contextlib.suppress(OSError):  # no swap accounting: memory alone
                    swap.write_text(value)
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def wrap_procs(procs: str, argv: list[str]) -> list[str]:
        """``argv`` run from inside the cgroup whose ``cgroup.procs`` is ``procs``: it and
        every process it starts."""
        script = 'echo $$ > "$1" && shift && exec "$@"'
        return ["/bin/sh", "-c", script, "nbseal-cgroup", procs, *argv]

    def remove(self) -> bool:
        """Remove the cgroup once empty; True when it is gone."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def sweep_stale_cgroups(parent: Path) -> None:
    """Remove sandbox cgroups left empty by a proxy that was killed.

    A cgroup whose maker still runs is left alone, empty or not: it may be
    between its mkdir and its sandbox's start.
    """
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if not entry.name.startswith(CGROUP_PREFIX) or not entry.is_dir():
                continue
            pid, _, rest = entry.name.removeprefix(CGROUP_PREFIX).partition("-")
            start = rest.rpartition("-")[0]
            if pid.isdigit() and process_start_time(int(pid)) == start:
                continue  # its maker runs
            with contextlib.suppress(OSError):
                if not (entry / "cgroup.procs").read_text().strip():
                    entry.rmdir()
