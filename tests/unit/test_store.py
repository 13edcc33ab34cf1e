"""The store's guarantees, with a backend stand-in at the build seam.

The backend is the seam here: the store's atomicity and locking are under
test, not uv (tests/kernel/test_store_real.py builds with real uv).
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from nbseal.backends.base import Backend
from nbseal.backends.kernelspecs import KernelCommand
from nbseal.errors import BuildError
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.sandbox.launch import Launcher
from nbseal.sandbox.policy import SandboxPolicy
from nbseal.store import EnvironmentStore

LOCK = Lock(
    "uv",
    ("x",),
    "3.11.7",
    "linux-x86_64",
    "2025-01-01T00:00:00Z",
    '[[packages]]\nname = "x"\nversion = "1"\n',
)


class FileBackend(Backend):
    name = "files"

    def __init__(self, fail_after: int | None = None, delay: float = 0.0) -> None:
        self.fail_after = fail_after
        self.delay = delay
        self.builds = 0

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        raise NotImplementedError

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        self.builds += 1
        (dest / "bin").mkdir(parents=True)
        for i in range(5):
            if self.fail_after is not None and i == self.fail_after:
                raise OSError(28, "No space left on device")
            (dest / "bin" / f"f{i}").write_text(str(i))
            await asyncio.sleep(self.delay)

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        raise NotImplementedError  # the store never starts a kernel

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        raise NotImplementedError


def test_build_then_reuse(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path)
    backend = FileBackend()
    first = asyncio.run(store.ensure(LOCK, backend, Progress("t")))
    second = asyncio.run(store.ensure(LOCK, backend, Progress("t")))
    assert (first.reused, second.reused) == (False, True)
    assert backend.builds == 1
    assert first.path == second.path == tmp_path / "envs" / LOCK.key
    mode = (first.path / "bin" / "f0").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert [e.key for e in store.entries()] == [LOCK.key]


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path)
    with pytest.raises(BuildError, match="No space left"):
        asyncio.run(store.ensure(LOCK, FileBackend(fail_after=3), Progress("t")))
    assert store.lookup(LOCK) is None
    assert [p.name for p in (tmp_path / "envs").iterdir() if p.name.startswith(".build")] == []
    # a retry starts clean and succeeds
    built = asyncio.run(store.ensure(LOCK, FileBackend(), Progress("t")))
    assert sorted(p.name for p in (built.path / "bin").iterdir()) == [f"f{i}" for i in range(5)]


def test_concurrent_builds_of_one_key_build_once(tmp_path: Path) -> None:
    backend = FileBackend(delay=0.05)
    steps: list[str] = []
    progress = Progress("t")
    progress.subscribe(lambda e: steps.append(e.step))

    async def both() -> list[bool]:
        # Two store objects: two independent file-lock handles, as two processes.
        results = await asyncio.gather(
            EnvironmentStore(tmp_path).ensure(LOCK, backend, progress),
            EnvironmentStore(tmp_path).ensure(LOCK, backend, progress),
        )
        return sorted(r.reused for r in results)

    assert asyncio.run(both()) == [False, True]
    assert backend.builds == 1
    assert any("waiting for another process" in s for s in steps)


def test_gc_removes_unused_entries_and_abandoned_builds(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path)
    built = asyncio.run(store.ensure(LOCK, FileBackend(), Progress("t")))
    abandoned = tmp_path / "envs" / f".build-{'0' * 32}-deadbeef"
    abandoned.mkdir()
    (abandoned / "half").write_text("x")
    assert store.gc(older_than_seconds=3600) == []
    assert built.path.exists()
    assert not abandoned.exists()
    old = 1_000_000_000
    os.utime(tmp_path / "envs" / ".usage" / LOCK.key, (old, old))
    removed = store.gc(older_than_seconds=3600)
    assert [e.key for e in removed] == [LOCK.key]
    assert not built.path.exists()
