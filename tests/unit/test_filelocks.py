"""The stores' file locks: exclusive across holders and processes, dropped when a holder dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest

from nbseal.filelocks import StoreLock, remove_unless_busy


def _holder(path: Path) -> subprocess.Popen[str]:
    """Another process that takes the lock, says so, and holds it until killed."""
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from nbseal.filelocks import StoreLock
        lock = StoreLock(Path({str(path)!r}))
        assert lock.try_acquire()
        print("held", flush=True)
        time.sleep(600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_two_holders_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    first, second = StoreLock(tmp_path / "k.lock"), StoreLock(tmp_path / "k.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


def test_a_lock_held_by_another_process_is_busy_until_that_process_dies(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    holder = _holder(path)
    try:
        assert not StoreLock(path).try_acquire()
    finally:
        holder.kill()  # SIGKILL: no release ran, the kernel drops the lock
        holder.wait()
    lock = StoreLock(path)
    assert lock.try_acquire()
    lock.release()


def test_the_filelock_package_and_nbseal_exclude_each_other(tmp_path: Path) -> None:
    """Stores written by earlier nbseal releases (which took locks with filelock) stay safe."""
    theirs = filelock.FileLock(str(tmp_path / "k.lock"))
    theirs.acquire(timeout=0)
    try:
        assert not StoreLock(tmp_path / "k.lock").try_acquire()
    finally:
        theirs.release()
    ours = StoreLock(tmp_path / "k.lock")
    assert ours.try_acquire()
    with pytest.raises(filelock.Timeout):
        filelock.FileLock(str(tmp_path / "k.lock")).acquire(timeout=0)
    ours.release()


def test_taking_a_held_lock_twice_is_a_programming_error(tmp_path: Path) -> None:
    lock = StoreLock(tmp_path / "k.lock")
    assert lock.try_acquire()
    with pytest.raises(RuntimeError, match="already locked"):
        lock.try_acquire()
    lock.release()
    assert not lock.held


def test_garbage_collection_skips_what_another_process_holds(tmp_path: Path) -> None:
    (tmp_path / "locks").mkdir()
    holder = _holder(tmp_path / "locks" / "busy")
    removed: list[str] = []
    try:
        done = remove_unless_busy(
            ["busy", "free"], lambda name: tmp_path / "locks" / name, removed.append
        )
    finally:
        holder.kill()
        holder.wait()
    assert done == removed == ["free"]
