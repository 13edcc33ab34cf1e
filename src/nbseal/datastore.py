"""The content-addressed data store: verified files keyed by their SHA-256.

Layout under ``<cache root>/data``::

    sha256/<hex>              a complete, verified, read-only file
    .partial-<hex>-<rand>     a download in progress; never used
    .locks/<hex>.lock         one download per hash across processes
    .usage/<hex>              mtime = last time a notebook used it
    .sources/<hex>.json       where it came from (for ``nbseal data list``)

A file enters ``sha256/`` only by ``rename`` after its hash was checked, so a
failed, cut or killed download never leaves anything that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from nbseal.errors import DataHashError, StoreError
from nbseal.filelocks import StoreLock, acquire_polling, remove_unless_busy
from nbseal.fsutil import atomic_write_text
from nbseal.paths import cache_root
from nbseal.progress import Progress
from nbseal.sources import UNRESTRICTED, SourcePolicy

__all__ = ["DataEntry", "DataStore", "StoredData"]

Fetcher = Callable[[str, Path, Progress, SourcePolicy], Awaitable[tuple[str, int]]]


@dataclass(frozen=True)
class StoredData:
    sha256: str
    path: Path
    size: int
    reused: bool


@dataclass(frozen=True)
class DataEntry:
    sha256: str
    path: Path
    size: int
    last_used: float
    url: str


async def _fetch(
    url: str, dest: Path, progress: Progress, sources: SourcePolicy
) -> tuple[str, int]:
    # Imported when a file is fetched: http.client and ssl are 10-15 ms of
    # every kernel's start, and most starts fetch nothing.
    from nbseal.fetch import fetch_to

    return await fetch_to(url, dest, progress, sources)


class DataStore:
    def __init__(self, root: Path | None = None, fetcher: Fetcher = _fetch) -> None:
        self.root = (root or cache_root()) / "data"
        self.fetcher = fetcher

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256

    def lookup(self, sha256: str) -> Path | None:
        path = self.path_for(sha256)
        return path if path.is_file() else None

    def touch(self, sha256: str) -> None:
        usage = self.root / ".usage" / sha256
        usage.parent.mkdir(parents=True, exist_ok=True)
        usage.touch()

    def _prepare_dirs(self) -> None:
        try:
            for sub in ("sha256", ".locks", ".usage", ".sources"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError.cannot_create("data store", self.root, str(exc.strerror)) from exc

    async def ensure(
        self, url: str, sha256: str, progress: Progress, policy: SourcePolicy = UNRESTRICTED
    ) -> StoredData:
        """The stored file of ``sha256``, fetched from ``url`` once if need be.

        ``policy`` bounds what the host reads or requests for the caller.
        """
        found = self.lookup(sha256)
        if found is not None:
            self.touch(sha256)
            return StoredData(sha256, found, found.stat().st_size, reused=True)
        self._prepare_dirs()
        fetch_lock = StoreLock(self._lockfile(sha256))
        await acquire_polling(fetch_lock, progress, "waiting for another process fetching it")
        try:
            found = self.lookup(sha256)  # fetched by the process we waited for
            if found is not None:
                self.touch(sha256)
                return StoredData(sha256, found, found.stat().st_size, reused=True)
            return await self._fetch(url, progress, expected=sha256, policy=policy)
        finally:
            fetch_lock.release()

    async def add(self, url: str, progress: Progress) -> StoredData:
        """Fetch ``url`` whose hash is not known yet (``nbseal data add``) and store it."""
        self._prepare_dirs()
        return await self._fetch(url, progress, expected=None, policy=UNRESTRICTED)

    async def _fetch(
        self, url: str, progress: Progress, expected: str | None, policy: SourcePolicy
    ) -> StoredData:
        partial = self.root / f".partial-{expected or 'new'}-{uuid.uuid4().hex[:8]}"
        try:
            actual, size = await self.fetcher(url, partial, progress, policy)
            if expected is not None and actual != expected:
                withheld = policy.withholds_hash(url)
                raise DataHashError(url=url, expected=expected, actual=actual, withheld=withheld)
            os.chmod(partial, 0o444)
            final = self.path_for(actual)
            if final.exists():  # `add` of something already stored
                partial.unlink()
                reused = True
            else:
                os.rename(partial, final)
                reused = False
            source = {"url": url, "sha256": actual, "size": size, "fetched": time.time()}
            atomic_write_text(self.root / ".sources" / f"{actual}.json", json.dumps(source))
            self.touch(actual)
            return StoredData(actual, final, size, reused=reused)
        finally:
            partial.unlink(missing_ok=True)

    # -- maintenance --------------------------------------------------------
    def entries(self) -> list[DataEntry]:
        folder = self.root / "sha256"
        if not folder.is_dir():
            return []
        result = []
        for path in sorted(folder.iterdir()):
            url = ""
            source = self.root / ".sources" / f"{path.name}.json"
            with contextlib.suppress(OSError, ValueError):
                url = str(json.loads(source.read_text()).get("url", ""))
            usage = self.root / ".usage" / path.name
            last_used = usage.stat().st_mtime if usage.exists() else path.stat().st_mtime
            result.append(DataEntry(path.name, path, path.stat().st_size, last_used, url))
        return result

    def gc(self, older_than_seconds: float) -> list[DataEntry]:
        """Remove files unused for ``older_than_seconds`` and abandoned partial downloads."""
        cutoff = time.time() - older_than_seconds
        unused = [entry for entry in self.entries() if entry.last_used < cutoff]

        def remove(entry: DataEntry) -> None:
            entry.path.unlink(missing_ok=True)
            (self.root / ".usage" / entry.sha256).unlink(missing_ok=True)
            (self.root / ".sources" / f"{entry.sha256}.json").unlink(missing_ok=True)

        removed = remove_unless_busy(unused, lambda e: self._lockfile(e.sha256), remove)
        if self.root.is_dir():
            # A partial download is named .partial-SHA256-...: its fetch holds SHA256's lock.
            partial = list(self.root.glob(".partial-*"))
            remove_unless_busy(
                partial,
                lambda p: self._lockfile(p.name.split("-")[1]),
                lambda p: p.unlink(missing_ok=True),
            )
        return removed

    def _lockfile(self, sha256: str) -> Path:
        return self.root / ".locks" / f"{sha256}.lock"
