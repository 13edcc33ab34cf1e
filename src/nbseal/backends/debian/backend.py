"""The Debian backend: resolve by building a tree, build offline from the lock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbseal.backends.base import Backend
from nbseal.backends.debian.indices import _index, _locked, _uris_for
from nbseal.backends.debian.kernel import KERNEL_DIRS, find_rootfs_kernel_command
from nbseal.backends.debian.lock import (
    DebCache,
    DebGcResult,
    DebianLockData,
    DebianPackage,
    DebianSource,
    sha256_file,
)
from nbseal.backends.debian.mmdebstrap import (
    BuildUser,
    _dpkg_options,
    _failure,
    _normalise_hook,
    _run_mmdebstrap,
    prune_excluded,
)
from nbseal.backends.debian.preflight import check_mmdebstrap
from nbseal.backends.debian.sources import (
    APT_OPTIONS,
    BUILD_TOOLS,
    DEFAULT_DPKG_OPTIONS,
    HOOKS,
    PREBUILT_MAX_AGE,
    debian_packages,
    host_architecture,
    host_suite,
    mirror_sources,
)
from nbseal.backends.debian.tree import (
    installed_packages,
    share_identical_files,
    unpack_rootfs,
)
from nbseal.backends.kernelspecs import KernelCommand, kernelspec_files
from nbseal.errors import DebianError, LockFormatError
from nbseal.fsutil import remove_tree
from nbseal.lock import Lock
from nbseal.paths import cache_root
from nbseal.plan import EnvironmentSpec, host_platform
from nbseal.progress import Progress
from nbseal.sandbox.launch import Launcher
from nbseal.sandbox.policy import SandboxPolicy


# ---------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------
class DebianBackend(Backend):
    """Debian packages into a root file system; see the module's docstring."""

    name = "deb"

    def __init__(
        self,
        *,
        debs: DebCache | None = None,
        work_root: Path | None = None,
        dpkg_options: Sequence[str] = DEFAULT_DPKG_OPTIONS,
        eatmydata: bool = True,
        require_kernel: bool = True,
    ) -> None:
        self.debs = debs if debs is not None else DebCache()
        # Resolved trees and build scratch live beside the store, on its file
        # system, so a resolved tree moves into the store by rename.
        self.work_root = work_root if work_root is not None else cache_root() / "debian"
        self.dpkg_options = tuple(dpkg_options)
        self.eatmydata = eatmydata
        self.require_kernel = require_kernel

    @property
    def prebuilt_root(self) -> Path:
        return self.work_root / "resolved"

    # -- the kernel, describe, gc ----------------------------------------------
    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        return find_rootfs_kernel_command(env_path, wanted)

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        """The tree is always entered through bubblewrap; unsealed, it keeps the host's network."""
        from nbseal.sandbox.rootfs import RootfsLauncher

        if not sealed:
            policy = SandboxPolicy(
                workdir=policy.workdir,
                network=True,
                shares=policy.shares,
                readonly_binds=policy.readonly_binds,
            )
        return RootfsLauncher(policy)

    def describe(self, lock: Lock | None) -> dict[str, Any] | None:
        """The suite, mirror and sources of the lock: a ``source`` and a ``debian`` field."""
        debian = _debian_source(lock)
        return {"source": debian["text"], "debian": debian}

    def collect_garbage(self, locks: Sequence[Lock]) -> str | None:
        debs = remove_unused_debs(locks, self.debs)
        if not (debs.removed or debs.kept_recent):
            return None
        recent = f" (kept {debs.kept_recent} used within a day)" if debs.kept_recent else ""
        return (
            f"removed {len(debs.removed)} .debs no stored environment uses, "
            f"freed {debs.freed_bytes / 1e6:.1f} MB{recent}"
        )

    @staticmethod
    def _hook_dirs(*, file_mirror: bool, eatmydata: bool) -> list[str]:
        dirs = []
        if file_mirror:
            dirs.append(HOOKS / "file-mirror-automount")
        if eatmydata:
            dirs.append(HOOKS / "eatmydata")
        return [f"--hook-dir={d}" for d in dirs]

    # -- resolve ------------------------------------------------------------
    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        mmdebstrap = await asyncio.to_thread(check_mmdebstrap)
        packages = debian_packages(spec.requirements)
        suite = host_suite()
        arch = host_architecture()
        sources, enforced = mirror_sources(suite, spec.pin)
        progress.step(
            f"resolving {' '.join(packages)} from Debian {suite} ({sources[0].uri})"
            + (f" as of {spec.pin}" if enforced else "")
        )
        workdir.mkdir(parents=True, exist_ok=True)
        builder = await asyncio.to_thread(BuildUser.current)
        room = await asyncio.to_thread(builder.open_room, "resolve")
        # sync-out makes them, as the build's ids.
        kept_debs, kept_lists = room.outputs / "debs", room.outputs / "lists"
        self.prebuilt_root.mkdir(parents=True, exist_ok=True)
        self._prune_prebuilt()
        tree = self.prebuilt_root / f".resolve-{uuid.uuid4().hex[:12]}"
        # mmdebstrap writes a tarball, unpacked into ``tree`` by this process
        # (see the package's docstring).
        output = room.outputs / "rootfs.tar"
        tools_hook = (
            'chroot "$1" sh -c "cd /var/cache/apt/archives && '
            f'apt-get download -q {" ".join(BUILD_TOOLS)} >/dev/null"'
        )
        argv = [
            *builder.command(mmdebstrap, room, network=True),
            "--mode=unshare",
            "--variant=apt",
            f"--architectures={arch}",
            f"--include={','.join(packages)}",
            *(f"--aptopt={o}" for o in APT_OPTIONS),
            *(['--aptopt=Acquire::Check-Valid-Until "false"'] if enforced else []),
            *self._hook_dirs(file_mirror=False, eatmydata=self.eatmydata),
            *_dpkg_options(self.dpkg_options, room.inputs),
            # Keep every .deb (also the essential ones) for the lock and the cache.
            "--skip=essential/unlink",
            *([f"--customize-hook={tools_hook}"] if self.eatmydata else []),
            f'--customize-hook=mkdir -p "{kept_debs}" "{kept_lists}"',
            f"--customize-hook=sync-out /var/cache/apt/archives {kept_debs}",
            f"--customize-hook=sync-out /var/lib/apt/lists {kept_lists}",
            *_normalise_hook(sources, room.inputs),
            suite,
            str(output),
            *(s.line() for s in sources),
        ]
        log_path = self.work_root / "logs" / f"{tree.name.lstrip('.')}.log"
        started = time.monotonic()
        try:
            run = await _run_mmdebstrap(argv, progress, log_path)
            if run.returncode != 0:
                raise _failure(run, f"resolving {' '.join(packages)}", suite, log_path)
            progress.step(f"root file system built in {time.monotonic() - started:.1f} s")
            await self._unpack(output, tree, progress)
            await asyncio.to_thread(prune_excluded, tree, self.dpkg_options)
            data = await asyncio.to_thread(
                self._lock_data, tree, kept_debs, kept_lists, sources, suite, arch, packages
            )
            data = dataclasses.replace(data, pin_enforced=enforced)
            if self.require_kernel and not kernelspec_files(*(tree / d for d in KERNEL_DIRS)):
                raise DebianError.no_kernel(spec.name, packages)
        except BaseException:
            await asyncio.to_thread(remove_tree, tree)
            raise
        finally:
            await asyncio.to_thread(builder.close_room, room)
        lock = Lock(
            backend=self.name,
            requirements=spec.requirements,
            # A root file system brings its own interpreters: no host Python in the key.
            python="",
            platform=host_platform(),
            exclude_newer=spec.pin,
            pylock=data.dumps(),
        )
        final = self.prebuilt_root / lock.key
        try:
            os.rename(tree, final)
        except OSError:  # an identical resolution is waiting already
            await asyncio.to_thread(remove_tree, tree)
        progress.step(f"locked {len(data.packages)} Debian packages")
        return lock

    def _lock_data(
        self,
        tree: Path,
        kept_debs: Path,
        kept_lists: Path,
        sources: Sequence[DebianSource],
        suite: str,
        arch: str,
        include: Sequence[str],
    ) -> DebianLockData:
        installed = installed_packages(tree)
        names = {name for name, _, _ in installed} | set(BUILD_TOOLS)
        index = _index(kept_lists, sources, names)
        by_hash = {sha256_file(deb): deb for deb in kept_debs.glob("*.deb")}
        locked: list[DebianPackage] = []
        unknown = []
        for key in sorted(installed):
            if key not in index:
                unknown.append("=".join(key[:2]))
                continue
            entry, number = index[key]
            locked.append(_locked(entry, number))
        if unknown:
            raise DebianError.not_in_index(unknown)
        tools = []
        if self.eatmydata:
            for entry, number in index.values():
                if entry.name in BUILD_TOOLS and entry.sha256 in by_hash:
                    tools.append(_locked(entry, number))
        for package in [*locked, *tools]:
            deb = by_hash.get(package.sha256)
            if deb is not None:
                self.debs.add_file(deb, package.sha256)
        uris = _uris_for(DebianLockData(suite, arch, tuple(include), tuple(sources), tuple(locked)))
        for package in self.debs.missing([*locked, *tools]):
            self.debs.fetch(package, uris.get(package.source, []))
        self.debs.mark_used([*locked, *tools])
        return DebianLockData(
            suite=suite,
            architecture=arch,
            include=tuple(include),
            sources=tuple(sources),
            packages=tuple(locked),
            build_tools=tuple(tools),
            dpkg_options=self.dpkg_options,
            resolved_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    # -- the store ----------------------------------------------------------
    def share_files(self, tree: Path, published: Sequence[Path]) -> str:
        """Hard-link ``tree``'s files to identical ones of the store's other Debian trees.

        Called by the store (see :class:`nbseal.store.SharesFiles`) with
        ``tree`` read-only, under the store's share lock.
        """
        return share_identical_files(tree, published).summary()

    async def _unpack(self, archive: Path, dest: Path, progress: Progress) -> None:
        started = time.monotonic()
        size = archive.stat().st_size
        await asyncio.to_thread(unpack_rootfs, archive, dest)
        progress.step(
            f"unpacked the {size / 2**20:.0f} MiB tarball in {time.monotonic() - started:.1f} s"
        )

    def _prune_prebuilt(self) -> None:
        cutoff = time.time() - PREBUILT_MAX_AGE
        for path in self.prebuilt_root.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    remove_tree(path)

    # -- build --------------------------------------------------------------
    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        data = DebianLockData.loads(lock.pylock)
        # Keeps them from `nbseal env gc` until this lock is in the store.
        await asyncio.to_thread(self.debs.mark_used, data.all_debs())
        wanted = data.installed_set()
        prebuilt = self.prebuilt_root / lock.key
        if prebuilt.is_dir():
            matches = await asyncio.to_thread(installed_packages, prebuilt)
            if matches == wanted:
                try:
                    os.rename(prebuilt, dest)
                    progress.step("using the root file system the resolution built")
                    return
                except OSError:
                    pass  # another file system: build it again
        await self.build_offline(data, dest, progress)

    async def build_offline(self, data: DebianLockData, dest: Path, progress: Progress) -> None:
        """Build ``data``'s tree from stored .debs only (missing ones are fetched first)."""
        mmdebstrap = await asyncio.to_thread(check_mmdebstrap)
        await self.ensure_debs(data, progress)
        everything = list(data.all_debs())
        self.work_root.mkdir(parents=True, exist_ok=True)
        builder = await asyncio.to_thread(BuildUser.current)
        room = await asyncio.to_thread(builder.open_room, "build")
        try:
            repo = room.inputs / "repo"
            repo.mkdir(mode=0o755)
            progress.step(f"indexing {len(everything)} stored .debs")
            await asyncio.to_thread(self._flat_repo, repo, everything)
            output = room.outputs / "rootfs.tar"
            argv = [
                # Offline: the .debs come from the file:// repository in inputs.
                *builder.command(mmdebstrap, room, network=False),
                "--mode=unshare",
                "--variant=custom",
                f"--architectures={data.architecture}",
                f"--include={','.join(p.pin for p in data.packages)}",
                *(f"--aptopt={o}" for o in APT_OPTIONS),
                # eatmydata only when the lock names its .debs (the hook installs them).
                *self._hook_dirs(
                    file_mirror=True,
                    eatmydata={t.name for t in data.build_tools} >= set(BUILD_TOOLS),
                ),
                *_dpkg_options(data.dpkg_options, room.inputs),
                *_normalise_hook(data.sources, room.inputs),
                data.suite,
                str(output),
                f"deb [trusted=yes] file://{repo} ./",
            ]
            log_path = self.work_root / "logs" / f"build-{uuid.uuid4().hex[:12]}.log"
            run = await _run_mmdebstrap(argv, progress, log_path)
            if run.returncode != 0:
                raise _failure(run, "building from the lock", data.suite, log_path)
            await self._unpack(output, dest, progress)
            await asyncio.to_thread(prune_excluded, dest, data.dpkg_options)
        finally:
            await asyncio.to_thread(builder.close_room, room)
        got = await asyncio.to_thread(installed_packages, dest)
        if got != data.installed_set():
            extra = sorted("=".join(p[:2]) for p in got - data.installed_set())
            lacking = sorted("=".join(p[:2]) for p in data.installed_set() - got)
            raise DebianError.rebuilt_differs(extra, lacking)
        progress.step(f"{len(got)} packages installed from stored .debs")

    async def ensure_debs(self, data: DebianLockData, progress: Progress) -> None:
        """Put every .deb of ``data`` into the local store, downloading what is missing."""
        everything = list(data.all_debs())
        missing = self.debs.missing(everything)
        if missing:
            progress.step(f"downloading {len(missing)} .debs missing from the local store")
            await self.debs.fetch_all(everything, _uris_for(data))

    def _flat_repo(self, repo: Path, packages: Sequence[DebianPackage]) -> None:
        """A ``file://`` repository: links to the cached .debs (mode 0444) and their index."""
        for package in packages:
            link = repo / f"{package.sha256}.deb"
            try:
                os.link(self.debs.path(package.sha256), link)
            except OSError:  # another file system; shutil.copy keeps mode 0444
                shutil.copy(self.debs.path(package.sha256), link)
        with open(repo / "Packages", "wb") as out:
            done = subprocess.run(
                ["dpkg-scanpackages", "-m", ".", "/dev/null"],
                cwd=repo,
                stdout=out,
                stderr=subprocess.PIPE,
                check=False,
            )
        os.chmod(repo / "Packages", 0o644)
        if done.returncode != 0:
            raise DebianError.cannot_index_debs(
                done.stderr.decode(errors="replace").strip()[-2000:]
            )


def remove_unused_debs(locks: Iterable[Lock], debs: DebCache | None = None) -> DebGcResult:
    """Remove the stored .debs that none of ``locks`` (the store's) names; see DebCache.gc.

    A Debian lock that cannot be read (a newer format) could name any .deb,
    so then nothing is removed.
    """
    keep: set[str] = set()
    for lock in locks:
        if lock.backend != DebianBackend.name:
            continue
        try:
            data = DebianLockData.loads(lock.pylock)
        except LockFormatError:
            return DebGcResult((), 0, 0)
        keep.update(p.sha256 for p in data.all_debs())
    return (debs if debs is not None else DebCache()).gc(keep)


def _debian_source(lock: Lock | None) -> dict[str, Any]:
    """Suite, mirror and sources of a Debian lock, with a line of ``text`` saying them."""
    if lock is None:
        return {"text": "Debian (not resolved yet)"}
    try:
        data = DebianLockData.loads(lock.pylock)
    except LockFormatError:
        return {"text": "Debian (lock unreadable)"}
    mirror = data.sources[0].uri if data.sources else ""
    suites = list(dict.fromkeys(s.suite for s in data.sources))
    text = f"Debian {data.suite} ({data.architecture}) from {mirror}"
    if len(suites) > 1:
        text += f" ({', '.join(suites)})"
    if not data.pin_enforced:
        text += "; the pin is not enforced (a regular mirror has only its newest packages)"
    return {
        "text": text,
        "suite": data.suite,
        "architecture": data.architecture,
        "mirror": mirror,
        "sources": [s.line() for s in data.sources],
        "pin_enforced": data.pin_enforced,
    }
