"""Files shared between Debian trees in the store, and the gc of unused .debs (no mmdebstrap)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from nbseal.backends.base import Backend
from nbseal.backends.debian import DebianBackend, remove_unused_debs
from nbseal.backends.debian.lock import DebCache, DebianLockData, DebianPackage, DebianSource
from nbseal.backends.debian.tree import disk_usage, share_identical_files
from nbseal.backends.kernelspecs import KernelCommand
from nbseal.cli import main as cli_main
from nbseal.fsutil import make_tree_readonly
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.sandbox.launch import Launcher
from nbseal.sandbox.policy import SandboxPolicy
from nbseal.store import EnvironmentStore

MTIME = 1_700_000_000  # as dpkg extracts it from the .deb: the same in every tree
BIG = b"shared library " * 20_000  # 300 kB


def _write(root: Path, rel: str, content: bytes, mode: int = 0o644, mtime: int = MTIME) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))
    return path


def _ino(path: Path) -> int:
    return path.lstat().st_ino


# -- share_identical_files --------------------------------------------------------
def test_only_identical_files_of_the_new_tree_become_links(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old, "usr/lib/libR.so", BIG, 0o644)
    _write(old, "usr/bin/R", b"#!/bin/sh\nexec R\n", 0o755)
    _write(old, "etc/ld.so.cache", b"cache", 0o644)
    (old / "usr/lib/libR.so.4").symlink_to("libR.so")
    make_tree_readonly(old)
    before = {p: (p.lstat().st_ino, p.lstat().st_mode) for p in old.rglob("*")}

    _write(new, "usr/lib/libR.so", BIG, 0o644)  # identical: linked
    _write(new, "usr/bin/R", b"#!/bin/sh\nexec R\n", 0o700)  # another mode
    _write(new, "etc/ld.so.cache", b"cache", 0o644, mtime=MTIME + 60)  # built later
    _write(new, "usr/share/a.txt", b"same twice", 0o644)
    _write(new, "usr/share/b.txt", b"same twice", 0o644)  # identical within the tree
    _write(new, "usr/share/capable", BIG, 0o644)
    os.setxattr(new / "usr/share/capable", "user.nbseal", b"1")  # another xattr
    _write(new, "usr/share/empty", b"")
    (new / "usr/lib/libR.so.4").symlink_to("libR.so")
    make_tree_readonly(new)

    result = share_identical_files(new, [old])

    assert _ino(new / "usr/lib/libR.so") == _ino(old / "usr/lib/libR.so")
    assert _ino(new / "usr/share/a.txt") == _ino(new / "usr/share/b.txt")
    for rel in ("usr/bin/R", "etc/ld.so.cache", "usr/share/capable"):
        assert (new / rel).lstat().st_nlink == 1, rel
    assert (new / "usr/lib/libR.so.4").is_symlink()
    assert (new / "usr/lib/libR.so").read_bytes() == BIG
    assert result.linked == 2
    assert result.files == 6  # the empty file is left out
    assert result.saved_bytes >= len(BIG)
    # The published tree kept every inode, mode and name; no temporary name is left.
    assert {p: (p.lstat().st_ino, p.lstat().st_mode) for p in old.rglob("*")} == before
    assert not [p for p in new.rglob(".nbseal-link-*")]
    assert (old / "usr/lib/libR.so").stat().st_mode & 0o222 == 0


# -- the store ------------------------------------------------------------------
def _deb_lock(name: str, sha: str = "a" * 64) -> Lock:
    data = DebianLockData(
        suite="bookworm",
        architecture="amd64",
        include=(name,),
        sources=(DebianSource("http://deb.debian.org/debian", "bookworm"),),
        packages=(DebianPackage(name, "1", "amd64", sha, 10, f"pool/{name}_1.deb"),),
    )
    return Lock("deb", (f"deb:{name}",), "", "linux-x86_64", "2026-11-01", data.dumps())


class _FakeDebian(DebianBackend):
    """Writes a small tree instead of running mmdebstrap: a big common file and one of its own."""

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        _write(dest, "usr/lib/libR.so", BIG)
        _write(dest, "usr/share/own", lock.key.encode() * 1000)


class _FakeVenv(Backend):
    name = "uv"

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        raise NotImplementedError

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        _write(dest, "lib/libR.so", BIG)

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        raise NotImplementedError  # the store never starts a kernel

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        raise NotImplementedError


def test_store_shares_files_between_debian_trees_only(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path)
    backend = _FakeDebian(debs=DebCache(tmp_path / "debs"), work_root=tmp_path / "debian")
    steps: list[str] = []
    progress = Progress("r")
    progress.subscribe(lambda event: steps.append(event.step))

    async def build_all() -> list[Path]:
        first = await store.ensure(_deb_lock("r-base-core"), backend, progress)
        second = await store.ensure(_deb_lock("r-cran-irkernel"), backend, progress)
        venv = await store.ensure(
            Lock("uv", ("six",), "3.11", "linux-x86_64", "2026-11-01", "x"), _FakeVenv(), progress
        )
        return [first.path, second.path, venv.path]

    first, second, venv = asyncio.run(build_all())
    assert _ino(first / "usr/lib/libR.so") == _ino(second / "usr/lib/libR.so")
    assert (second / "usr/share/own").stat().st_nlink == 1
    assert (venv / "lib/libR.so").stat().st_nlink == 1  # not a Debian tree
    assert (second / "usr/lib/libR.so").stat().st_mode & 0o777 == 0o444
    assert (second / "usr").stat().st_mode & 0o222 == 0  # published read-only
    assert any("1 of 3 files hard-linked" in step for step in steps), steps
    apart = disk_usage([first]) + disk_usage([second])
    assert disk_usage([first, second]) < 0.75 * apart
    assert (tmp_path / "envs" / ".locks" / "share.lock").exists()
    assert not list((tmp_path / "envs").glob(".build-*"))


# -- unused .debs ---------------------------------------------------------------
def _deb(cache: DebCache, content: bytes, age_seconds: float) -> str:
    sha = hashlib.sha256(content).hexdigest()
    path = _write(cache.root, f"{sha}.deb", content, 0o444)
    when = time.time() - age_seconds
    os.utime(path, (when, when))
    return sha


def test_gc_removes_debs_no_stored_lock_names(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "debs")
    used = _deb(cache, b"used", 40 * 86400)
    old = _deb(cache, b"old", 40 * 86400)
    recent = _deb(cache, b"recent", 60)
    _write(cache.root, ".fetch-x.tmp", b"half", mtime=int(time.time()) - 40 * 86400)
    (cache.root / "notes.txt").write_text("not ours")
    result = remove_unused_debs([_deb_lock("r-base-core", used)], cache)
    assert result.removed == (old,)
    assert result.freed_bytes == 3
    assert result.kept_recent == 1
    left = sorted(p.name for p in cache.root.iterdir())
    assert left == sorted([f"{used}.deb", f"{recent}.deb", "notes.txt"])
    # A lock it cannot read might name anything: then nothing goes.
    unreadable = Lock("deb", ("deb:x",), "", "linux-x86_64", "2026-11-01", "lock-version = 99")
    assert remove_unused_debs([unreadable], cache).removed == ()
    assert cache.has(recent)


def test_marking_debs_used_keeps_them(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "debs")
    sha = _deb(cache, b"in a build", 40 * 86400)
    cache.mark_used([DebianPackage("x", "1", "all", sha, 10, "pool/x_1_all.deb")])
    assert cache.gc(set()).removed == ()
    assert cache.gc(set(), unused_for=0).removed == (sha,)


def test_env_gc_command_removes_unused_debs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBSEAL_CACHE_DIR", str(tmp_path))
    cache = DebCache(tmp_path / "debs")
    kept_sha = _deb(cache, b"kept", 40 * 86400)
    dropped_sha = _deb(cache, b"dropped", 40 * 86400)
    lone_sha = _deb(cache, b"lone", 40 * 86400)
    store = EnvironmentStore(tmp_path)
    backend = _FakeDebian(debs=DebCache(tmp_path / "other-debs"), work_root=tmp_path / "debian")

    async def build() -> None:
        await store.ensure(_deb_lock("r-base-core", kept_sha), backend, Progress("a"))
        await store.ensure(_deb_lock("hello", dropped_sha), backend, Progress("b"))

    asyncio.run(build())
    stale = store.path_for(_deb_lock("hello", dropped_sha).key)
    usage = tmp_path / "envs" / ".usage" / stale.name
    os.utime(usage, (time.time() - 40 * 86400,) * 2)

    assert cli_main(["env", "gc", "--older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 environments" in out
    assert "removed 2 .debs no stored environment uses" in out
    assert not stale.exists()
    assert cache.has(kept_sha)
    assert not cache.has(dropped_sha)
    assert not cache.has(lone_sha)
    manifest = json.loads(
        (store.path_for(_deb_lock("r-base-core", kept_sha).key) / "nbseal-env.json").read_text()
    )
    assert manifest["lock"]["backend"] == "deb"
