"""File locks of the shared stores: taken without blocking an event loop, or skipped when busy.

A lock is ``flock(2)`` on a file of the store's ``.locks`` folder, as the
``filelock`` package takes it on Linux (the two exclude each other), in a
few lines of the standard library: that package's import cost every nbseal
process 10-20 ms before its kernel could start. The kernel drops a lock
when the process holding it dies, however it dies, so a killed build never
leaves its key locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from nbseal.progress import Progress

__all__ = ["StoreLock", "acquire_polling", "remove_unless_busy"]

T = TypeVar("T")


class StoreLock:
    """An exclusive lock on ``path`` (made if missing), held until :meth:`release`.

    Two ``StoreLock`` objects of one path exclude each other, in one process
    as across processes: each holds its own open file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free now; False if another holder has it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this holder")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            # Another user's lock file in a shared store: reading is enough for flock.
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the lock go (closing the file drops it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


async def acquire_polling(lock: StoreLock, progress: Progress, waiting: str) -> None:
    """Take ``lock`` without blocking the event loop; say once that we wait."""
    waited = False
    while not lock.try_acquire():
        if not waited:
            progress.step(waiting)
            waited = True
        await asyncio.sleep(0.2)


def remove_unless_busy(
    items: Iterable[T], lock_path: Callable[[T], Path], remove: Callable[[T], None]
) -> list[T]:
    """``remove`` each item whose lock file is free now; the items removed.

    An item whose lock is held (being built, fetched or used right now) is
    skipped without waiting: garbage collection never blocks a build.
    """
    removed = []
    for item in items:
        lock = StoreLock(lock_path(item))
        with contextlib.suppress(FileNotFoundError):  # no .locks folder: nothing holds it
            if not lock.try_acquire():
                continue
        try:
            remove(item)
            removed.append(item)
        finally:
            lock.release()
    return removed
