"""Build a Debian lock into a fresh store, with no network: run under ``unshare --net``.

    python -m tests.debian.rebuild_offline LOCK.json STORE_ROOT

Prints one JSON line: the entry's path, the build time, and whether a
connection to the lock's mirror was possible (it must not be).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
import urllib.parse
from pathlib import Path

from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.lock import DebianLockData
from nbseal.lock import Lock
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore


def mirror_reachable(lock: Lock) -> bool:
    uri = DebianLockData.loads(lock.pylock).sources[0].uri
    parsed = urllib.parse.urlsplit(uri)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 80), timeout=5):
            return True
    except OSError:
        return False


async def main() -> None:
    lock = Lock.from_json(json.loads(Path(sys.argv[1]).read_text()))
    reachable = mirror_reachable(lock)
    started = time.monotonic()
    root = Path(sys.argv[2])
    # Its own scratch folder: no tree left by a resolution can be reused.
    backend = DebianBackend(work_root=root / "debian")
    built = await EnvironmentStore(root).ensure(lock, backend, Progress("r"))
    print(
        json.dumps(
            {
                "path": str(built.path),
                "seconds": time.monotonic() - started,
                "mirror_reachable": reachable,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
