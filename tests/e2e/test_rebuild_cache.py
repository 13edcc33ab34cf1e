"""Rebuilding a stored lock is served by uv's cache (issue 17, item 5), hash-checked.

Real uv, real PyPI, a uv cache and a store of this module's own (temporary).
What a rebuild may leave in uv's cache: nothing new. uv may rewrite a file
it already has (same path, same size); a new file, a removed one or a
changed size fails the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from nbseal.backends.uv import UvBackend
from nbseal.errors import UvError
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.uv import uv_cache_dir

PIN = "2025-06-01"
# Wheels from PyPI, two of them behind markers (pexpect's and ptyprocess's) that hold here.
REQUIREMENTS = ("six==1.17.0", "pexpect==4.9.0 ; sys_platform != 'win32'")


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty uv cache and nbseal cache for this module, under one folder."""
    root = tmp_path_factory.mktemp("rebuild-cache")
    saved = {k: os.environ.get(k) for k in ("UV_CACHE_DIR", "NBSEAL_CACHE_DIR")}
    os.environ["UV_CACHE_DIR"] = str(root / "uv")
    os.environ["NBSEAL_CACHE_DIR"] = str(root / "nbseal")
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        from nbseal.fsutil import remove_tree

        remove_tree(root)


@pytest.fixture(scope="module")
def stored_lock(caches: Path) -> Lock:
    """A lock resolved (online) and built once: uv's cache is warm."""
    spec = EnvironmentSpec("py", REQUIREMENTS, PIN)
    backend = UvBackend()
    lock = asyncio.run(backend.resolve(spec, caches / "resolve", Progress("resolve")))
    assert len(lock.packages()) == 3, lock.pylock
    assert "\nmarker = " in lock.pylock
    dest = caches / "first"
    asyncio.run(backend.build(lock, dest, Progress("first build")))
    assert _imports(dest) == "1.17.0"
    return lock


def _imports(env: Path) -> str:
    probe = "import six, pexpect, ptyprocess; print(six.__version__)"
    run = subprocess.run([env / "bin" / "python", "-c", probe], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def _uv_caches(root: Path) -> dict[str, int]:
    """Every file (and link) of uv's caches under ``root`` (the one nbseal's sealed
    steps use, and the one it runs ``uv venv`` with): relative path -> size."""
    sizes: dict[str, int] = {}
    for cache in sorted(root.glob("uv*")):
        for dirpath, dirnames, filenames in os.walk(cache):
            for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
                path = Path(dirpath, name)
                sizes[str(path.relative_to(root))] = path.lstat().st_size
    return sizes


def test_a_rebuild_of_a_stored_lock_adds_nothing_to_uv_s_cache(
    caches: Path, stored_lock: Lock
) -> None:
    before = _uv_caches(caches)
    assert any("/archive-v0/" in path for path in before)  # the first build filled it
    dest = caches / "rebuilt"
    steps: list[str] = []
    progress = Progress("rebuild")
    progress.subscribe(lambda event: steps.append(event.step))
    asyncio.run(UvBackend().build(stored_lock, dest, progress))
    assert _imports(dest) == "1.17.0"
    after = _uv_caches(caches)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    resized = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert (added, removed, resized) == ([], [], []), steps
    assert sum(after.values()) - sum(before.values()) == 0
    # uv took every file from its cache: nothing was downloaded.
    assert not [s for s in steps if s.startswith(("Downloading", "Prepared"))], steps


def test_a_lock_whose_hash_was_altered_is_refused_though_the_file_is_cached(
    caches: Path, stored_lock: Lock
) -> None:
    wheel = re.search(
        r'six-1\.17\.0-py2\.py3-none-any\.whl".*?sha256 = "(\w{64})"', stored_lock.pylock
    )
    assert wheel is not None, stored_lock.pylock
    altered = stored_lock.pylock.replace(wheel.group(1), "0" * 64)
    assert altered != stored_lock.pylock
    dest = caches / "altered"
    with pytest.raises(UvError) as caught:
        asyncio.run(UvBackend().build(replace(stored_lock, pylock=altered), dest, Progress("x")))
    said = f"{caught.value}\n{caught.value.stderr}".lower()
    assert "hash mismatch" in said, said
    assert "0" * 64 in said
    assert not dest.exists()
    assert not list(uv_cache_dir().glob("nbseal-build-*"))
