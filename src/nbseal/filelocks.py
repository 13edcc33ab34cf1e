"""File locks of the shared stores: taken without blocking an event loop, or skipped when busy.

Apart from :mod:`nbseal.fsutil` so that what only reads and writes files
(the notebook, ``nbseal run`` before its kernel starts) imports neither
asyncio nor filelock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from nbseal.progress import Progress

__all__ = ["acquire_polling", "remove_unless_busy"]

T = TypeVar("T")


async def acquire_polling(filelock: FileLock, progress: Progress, waiting: str) -> None:
    """Take ``filelock`` without blocking the event loop; say once that we wait."""
    waited = False
    while True:
        try:
            filelock.acquire(timeout=0)
            return
        except Timeout:
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
        filelock = FileLock(str(lock_path(item)))
        try:
            filelock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            remove(item)
            removed.append(item)
        finally:
            filelock.release()
    return removed
