"""The content-addressed environment store.

Layout under ``<cache root>/envs``::

    <key>/                  a complete environment (never modified again)
    <key>/nbseal-env.json   its manifest, written before the rename
    .build-<key>-<rand>/    a build in progress; never used, removed on failure
    .locks/<key>.lock       serialises builds of one key across processes
    .locks/share.lock       serialises publishing trees that share files
    .usage/<key>            mtime = last time a kernel used the entry

An entry becomes visible only by ``rename`` of a finished build directory, so
a crash or a killed build can never leave something that looks complete.

Backends whose trees are large and alike (Debian root file systems) share
files: before its rename, a new tree of such a backend is made read-only and
its files identical to files of the same backend's entries are replaced by
hard links to them (``backend.share_files``). That happens under
``.locks/share.lock``, so two builds finishing together cannot miss each
other, and it changes only the new tree: published entries are only read.
Shared inodes are read-only in every tree that names them, and nothing
chmods a file of a published entry (removing one chmods only directories), so
sharing never changes what another entry sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from nbseal.backends.base import Backend
from nbseal.errors import BuildError, StoreError
from nbseal.filelocks import StoreLock, acquire_polling, remove_unless_busy
from nbseal.fsutil import atomic_write_text, make_tree_readonly, remove_tree, tree_size
from nbseal.lock import Lock
from nbseal.paths import cache_root
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress

__all__ = ["BuiltEnvironment", "EnvironmentStore", "SharesFiles", "StoreEntry"]

MANIFEST = "nbseal-env.json"
SHARE_LOCK = "share.lock"


@runtime_checkable
class SharesFiles(Protocol):
    """A backend whose trees share identical files with its other trees in the store."""

    name: str

    def share_files(self, tree: Path, published: Sequence[Path]) -> str:
        """Hard-link files of ``tree`` (read-only) to identical ones of ``published``.

        Only ``tree`` may change. Returns a one-line summary for the progress.
        """


@dataclass(frozen=True)
class BuiltEnvironment:
    key: str
    path: Path
    lock: Lock
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


@dataclass(frozen=True)
class StoreEntry:
    key: str
    path: Path
    size: int
    last_used: float
    packages: int


class EnvironmentStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_root()) / "envs"

    # -- layout -------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        return self.root / key

    def _lockfile(self, key: str) -> Path:
        return self.root / ".locks" / f"{key}.lock"

    def _usage(self, key: str) -> Path:
        return self.root / ".usage" / key

    def _resolution(self, resolution_key: str) -> Path:
        return self.root / ".resolutions" / f"{resolution_key}.json"

    # -- lookups ------------------------------------------------------------
    @staticmethod
    def key_of(lock: Lock) -> str:
        """Where ``lock``'s tree is: its key, or, built by another interpreter than the
        one that made the lock, a key of both (see Backend.store_key)."""
        from nbseal.backends import backend_for

        return backend_for(lock.backend).store_key(lock)

    def lookup(self, lock: Lock) -> BuiltEnvironment | None:
        return self._stored(self.key_of(lock), lock)

    def _stored(self, key: str, lock: Lock) -> BuiltEnvironment | None:
        path = self.path_for(key)
        if (path / MANIFEST).is_file():
            return BuiltEnvironment(key, path, lock, reused=True)
        return None

    def cached_resolution(self, spec: EnvironmentSpec, python: str, platform: str) -> Lock | None:
        path = self._resolution(spec.resolution_key(python, platform))
        try:
            return Lock.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError):
            return None

    def save_resolution(
        self, spec: EnvironmentSpec, python: str, platform: str, lock: Lock
    ) -> None:
        """Remember ``lock`` as the resolution of ``spec`` for ``python`` on ``platform``."""
        path = self._resolution(spec.resolution_key(python, platform))
        atomic_write_text(path, lock.dumps())

    def touch(self, key: str) -> None:
        usage = self._usage(key)
        usage.parent.mkdir(parents=True, exist_ok=True)
        usage.touch()

    # -- building -----------------------------------------------------------
    async def ensure(self, lock: Lock, backend: Backend, progress: Progress) -> BuiltEnvironment:
        """Return the built environment of ``lock``, building it once if needed."""
        key = backend.store_key(lock)
        found = self._stored(key, lock)
        if found is not None:
            self.touch(key)
            return found
        self._prepare_dirs()
        key_lock = StoreLock(self._lockfile(key))
        await acquire_polling(
            key_lock, progress, "waiting for another process building the same environment"
        )
        try:
            found = self._stored(key, lock)  # another process may have built it meanwhile
            if found is not None:
                self.touch(key)
                return found
            built = await self._build(lock, key, backend, progress)
            self.touch(key)
            return built
        finally:
            key_lock.release()

    def _prepare_dirs(self) -> None:
        try:
            for sub in (self.root, self.root / ".locks", self.root / ".usage"):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError.cannot_create(
                "environment store", self.root, str(exc.strerror)
            ) from exc

    async def _build(
        self, lock: Lock, key: str, backend: Backend, progress: Progress
    ) -> BuiltEnvironment:
        final = self.path_for(key)
        # We hold the key's lock, so any staging folder of this key was
        # abandoned by a killed build: remove it before starting afresh.
        for abandoned in self.root.glob(f".build-{key}-*"):
            remove_tree(abandoned)
        staging = self.root / f".build-{key}-{uuid.uuid4().hex[:8]}"
        try:
            await backend.build(lock, staging, progress)
            manifest = {
                "key": key,
                "created": time.time(),
                "lock": lock.to_json(),
            }
            atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1))
            if isinstance(backend, SharesFiles):
                await self._publish_shared(backend, staging, final, progress)
            else:
                make_tree_readonly(staging)
                os.rename(staging, final)
        except BaseException as exc:
            remove_tree(staging)
            if isinstance(exc, OSError) and not isinstance(exc, StoreError):
                raise BuildError.store_entry_failed(key, str(exc)) from exc
            raise
        return BuiltEnvironment(key, final, lock, reused=False)

    async def _publish_shared(
        self, backend: SharesFiles, staging: Path, final: Path, progress: Progress
    ) -> None:
        """Make ``staging`` read-only, share its files, and publish it, under the share lock."""
        share_lock = StoreLock(self.root / ".locks" / SHARE_LOCK)
        await acquire_polling(share_lock, progress, "waiting for another build to publish")
        try:
            # Read-only first: the modes compared are then the final ones, and
            # no chmod comes after a file became a link to another tree's inode.
            await asyncio.to_thread(make_tree_readonly, staging)
            published = [path for path, lock in self.locks() if lock.backend == backend.name]
            summary = await asyncio.to_thread(backend.share_files, staging, published)
            progress.step(summary)
            os.rename(staging, final)
        finally:
            share_lock.release()

    # -- maintenance --------------------------------------------------------
    def locks(self) -> Iterator[tuple[Path, Lock]]:
        """Every complete entry with its lock (entries with unreadable manifests are skipped)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                manifest = json.loads((path / MANIFEST).read_text())
                lock = Lock.from_json(manifest["lock"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            yield path, lock

    def entries(self) -> list[StoreEntry]:
        if not self.root.is_dir():
            return []
        result = []
        for path in sorted(self.root.iterdir()):
            manifest = path / MANIFEST
            if path.name.startswith(".") or not manifest.is_file():
                continue
            try:
                lock = Lock.from_json(json.loads(manifest.read_text())["lock"])
                packages = len(lock.packages())
            except (OSError, ValueError, KeyError):
                packages = 0
            usage = self._usage(path.name)
            last_used = usage.stat().st_mtime if usage.exists() else manifest.stat().st_mtime
            result.append(StoreEntry(path.name, path, tree_size(path), last_used, packages))
        return result

    def gc(self, older_than_seconds: float) -> list[StoreEntry]:
        """Remove entries unused for ``older_than_seconds`` and leftover failed builds."""
        cutoff = time.time() - older_than_seconds
        unused = [entry for entry in self.entries() if entry.last_used < cutoff]

        def remove(entry: StoreEntry) -> None:
            remove_tree(entry.path)
            self._usage(entry.key).unlink(missing_ok=True)

        removed = remove_unless_busy(unused, lambda e: self._lockfile(e.key), remove)
        if self.root.is_dir():
            # A build folder is named .build-KEY-...: its build holds KEY's lock.
            builds = list(self.root.glob(".build-*"))
            remove_unless_busy(builds, lambda p: self._lockfile(p.name.split("-")[1]), remove_tree)
        return removed
