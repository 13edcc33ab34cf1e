"""A sandbox's caps hold: a fork bomb stops, scratch space fills, memory runs out.

Each cap is tested against a kernel whose limit is low enough to hit at once,
beside a control kernel under the default limits that does the same work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.limits import (
    CGROUP_PREFIX,
    DEFAULT_LIMITS,
    Limits,
    format_size,
    memory_cgroup_parent,
    parse_size,
)
from tests.sandbox.helpers import SealedKernel, wait_until

Start = Callable[[SandboxPolicy], SealedKernel]

# Forks children that sleep, until fork fails or `limit` is reached; kills them.
FORK_BOMB = """
import errno, os, signal, time
children, failure = [], None
try:
    for _ in range({limit}):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    failure = errno.errorcode.get(exc.errno, exc.errno)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(len(children), failure)
"""

FILL = """
def _fill(path, mib):
    block = b"x" * 2**20
    try:
        with open(path, "wb") as handle:
            for _ in range(mib):
                handle.write(block)
                handle.flush()
    except OSError as exc:
        return _errno.errorcode.get(exc.errno, exc.errno)
    finally:
        if _os.path.exists(path):
            _os.unlink(path)
    return "ok"
"""


def test_a_fork_bomb_stops_at_the_process_cap(start_sealed: Start, workdir: Path) -> None:
    capped = start_sealed(SandboxPolicy(workdir=workdir, limits=Limits(tasks=64)))
    out = capped.execute(FORK_BOMB.format(limit=1000))
    assert out.status == "ok", (out.ename, out.evalue)
    made, failure = out.stdout.split()
    assert failure == "EAGAIN"
    assert int(made) < 64
    # The kernel survives its bomb and goes on.
    assert capped.value("1 + 1") == "2"
    # Control: the default cap lets the same cell fork 200 children.
    free = start_sealed(SandboxPolicy(workdir=workdir))
    out = free.execute(FORK_BOMB.format(limit=200))
    assert out.stdout.split() == ["200", "None"], (out.stdout, out.evalue)


@pytest.mark.parametrize("where", ["/tmp/fill", "_os.path.expanduser('~/fill')", "/dev/shm/fill"])
def test_scratch_space_fills_at_its_size(start_sealed: Start, workdir: Path, where: str) -> None:
    path = where if where.startswith("_os") else repr(where)
    small = start_sealed(SandboxPolicy(workdir=workdir, limits=Limits(scratch=16 * 2**20)))
    small.execute(FILL)
    assert small.value(f"_fill({path}, 32)") == "ENOSPC"
    assert small.value(f"_fill({path}, 8)") == "ok", "within the size, it writes"
    default = start_sealed(SandboxPolicy(workdir=workdir))
    default.execute(FILL)
    assert default.value(f"_fill({path}, 32)") == "ok"


def test_memory_beyond_the_cap_ends_the_kernel_not_the_host(
    start_sealed: Start, workdir: Path
) -> None:
    parent = memory_cgroup_parent()
    if isinstance(parent, str):
        if os.geteuid() == 0:
            pytest.fail(f"root, yet no memory cgroup: {parent}")
        pytest.skip(f"memory is capped only where cgroups allow: {parent}")
    grab = "_held = b'x' * (384 * 2**20)\nprint(len(_held) // 2**20)"
    # Control: the default cap holds 384 MiB.
    roomy = start_sealed(SandboxPolicy(workdir=workdir))
    assert roomy.execute(grab).stdout.strip() == "384"
    capped = start_sealed(SandboxPolicy(workdir=workdir, limits=Limits(memory=128 * 2**20)))
    cgroup = parent.directory / _cgroup_of(capped)
    assert (cgroup / parent.limit_file).read_text().strip() == str(128 * 2**20)
    capped.execute_nowait(grab)
    assert capped.wait_exit(timeout=60) != 0, "the kernel is killed inside its cgroup"
    # The host and the other sandbox are fine, and the cgroup goes with its sandbox.
    assert roomy.value("len(_held) // 2**20") == "384"
    assert wait_until(lambda: not cgroup.exists(), timeout=10)


def _cgroup_of(kernel: SealedKernel) -> str:
    """The name of the cgroup a running kernel's sandbox is in."""
    pid = kernel.kernel_pid()
    assert pid is not None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        name = line.split(":", 2)[2].rsplit("/", 1)[-1]
        if name.startswith(CGROUP_PREFIX):
            return name
    raise AssertionError("the sandbox runs in no cgroup of its own")


def test_sizes_are_read_and_written_in_binary_units() -> None:
    assert parse_size("512M") == 512 * 2**20
    assert parse_size("2G") == parse_size("2GiB") == parse_size("2gb") == 2 * 2**30
    assert parse_size("1048576") == 2**20
    assert format_size(DEFAULT_LIMITS.memory) == "8 GiB"
    with pytest.raises(ValueError, match="is not a size"):
        parse_size("lots")
    with pytest.raises(ValueError, match="below 64 MiB"):
        Limits(memory=2**20)
    assert DEFAULT_LIMITS.with_settings({"processes": "4096", "tmp": "4G"}) == Limits(
        tasks=4096, memory=DEFAULT_LIMITS.memory, scratch=4 * 2**30
    )
    with pytest.raises(ValueError, match="not a limit"):
        DEFAULT_LIMITS.with_settings({"cpu": "2"})
