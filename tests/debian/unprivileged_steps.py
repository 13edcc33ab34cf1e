"""What the unprivileged test runs as the regular user, after ``nbseal run`` stored R.

    python -m tests.debian.unprivileged_steps     (NBSEAL_CACHE_DIR: the user's cache)

Builds the store's Debian environment again, offline from the stored .debs,
under a second key: the lock's ``include`` names one more installed package,
which a build does not read. The same store then publishes a second R tree,
which shares its files with the first. Then removes that tree again. Prints
one JSON line of findings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.lock import DebianLockData
from nbseal.backends.debian.tree import disk_usage, installed_packages
from nbseal.fsutil import remove_tree
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore

LIBR = Path("usr/lib/R/lib/libR.so")


def describe(tree: Path) -> dict[str, Any]:
    """Owners, write and setuid bits, device nodes: what a user's tree must not have."""
    owners: set[int] = set()
    writable, special, setid = [], [], []
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            owners.add(info.st_uid)
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_mode & 0o222:
                writable.append(path)
            if info.st_mode & 0o7000:
                setid.append(path)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                special.append(path)
    return {
        "owners": sorted(owners),
        "writable": writable[:5],
        "setid": setid[:5],
        "special": special[:5],
    }


async def main() -> None:
    store = EnvironmentStore()
    [(first, lock)] = [(p, lk) for p, lk in store.locks() if lk.backend == "deb"]
    data = DebianLockData.loads(lock.pylock)
    twin_data = dataclasses.replace(data, include=(*data.include, "libc6"))
    twin = dataclasses.replace(lock, pylock=twin_data.dumps())
    assert twin.key != lock.key
    steps: list[str] = []
    progress = Progress("r")
    progress.subscribe(lambda event: steps.append(event.step))
    started = time.monotonic()
    built = await store.ensure(twin, DebianBackend(), progress)
    seconds = time.monotonic() - started
    result = {
        "first": str(first),
        "second": str(built.path),
        "seconds": seconds,
        "steps": steps,
        "same_packages": installed_packages(built.path) == data.installed_set()
        and installed_packages(first) == data.installed_set(),
        "libr_shared": (built.path / LIBR).stat().st_ino == (first / LIBR).stat().st_ino,
        "apart_mib": (disk_usage([first]) + disk_usage([built.path])) / 2**20,
        "together_mib": disk_usage([first, built.path]) / 2**20,
        "second_tree": describe(built.path),
    }
    remove_tree(built.path)
    result["removed"] = not built.path.exists()
    result["first_intact"] = (first / LIBR).is_file()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
