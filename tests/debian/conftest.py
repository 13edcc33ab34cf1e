"""Fixtures for Debian root file systems built by the real mmdebstrap.

Tests that need mmdebstrap take the ``mmdebstrap`` fixture, which skips them
(saying why) only when mmdebstrap cannot run on this machine at all: not
installed, no permission to unshare namespaces, or (as a regular user) no
subordinate ids or user namespaces. A mirror that cannot be reached is a
failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbseal.backends.debian import DebianBackend, DebianUnavailableError, check_mmdebstrap
from nbseal.fsutil import remove_tree
from nbseal.lock import Lock
from nbseal.paths import cache_root
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore
from tests.sandbox.conftest import (  # noqa: F401 (shared fixtures)
    loop_thread,
    open_dir,
    runtime_dir,
)

R_REQUIREMENTS = ("deb:r-base-core", "deb:r-cran-irkernel")
PIN = "2026-11-01T00:00:00Z"


@pytest.fixture(scope="session")
def mmdebstrap() -> str:
    try:
        return check_mmdebstrap()
    except DebianUnavailableError as exc:
        pytest.skip(f"mmdebstrap cannot run here: {exc.message} ({exc.hint})")


@dataclass(frozen=True)
class BuiltRootfs:
    lock: Lock
    path: Path
    resolve_seconds: float
    build_seconds: float
    steps: tuple[str, ...]


@pytest.fixture(scope="session")
def r_env(mmdebstrap: str) -> Iterator[BuiltRootfs]:
    """R and IRkernel from Debian, resolved and stored once per session.

    Removed afterwards (tree, .debs, scratch: about 380 MB) unless the tests
    run on a cache of their own choosing ($NBSEAL_TEST_CACHE_DIR).
    """
    steps: list[str] = []
    progress = Progress("r")
    progress.subscribe(lambda event: steps.append(event.step))
    spec = EnvironmentSpec("r", R_REQUIREMENTS, PIN)

    async def run() -> BuiltRootfs:
        with tempfile.TemporaryDirectory(prefix="nbseal-resolve-") as tmp:
            started = time.monotonic()
            lock = await DebianBackend().resolve(spec, Path(tmp), progress)
            resolved = time.monotonic() - started
        started = time.monotonic()
        built = await EnvironmentStore().ensure(lock, DebianBackend(), progress)
        return BuiltRootfs(lock, built.path, resolved, time.monotonic() - started, tuple(steps))

    result = asyncio.run(run())
    print(
        f"\nMEASURE r resolve+build: {result.resolve_seconds:.1f} s resolve, "
        f"{result.build_seconds:.1f} s store (reused the resolved tree)"
    )
    yield result
    if not os.environ.get("NBSEAL_TEST_CACHE_DIR"):
        root = cache_root()
        for path in (result.path, root / "debs", root / "debian"):
            remove_tree(path)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nbseal-work-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
