"""Debian root file systems from the real mmdebstrap, with the real IRkernel.

Slow (marked): resolving R builds a ~280 MB tree from the mirror, and the
offline rebuild builds it again from stored .debs in a network namespace
without any network. They skip only when mmdebstrap cannot run (see
conftest.py), never because a test would take long.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.kernel import find_rootfs_kernel_command
from nbseal.backends.debian.lock import DebCache, DebianLockData, sha256_file
from nbseal.backends.debian.tree import disk_usage, installed_packages, share_identical_files
from nbseal.errors import BuildError, DebianResolutionError
from nbseal.fsutil import remove_tree
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.sandbox import SandboxPolicy
from nbseal.store import EnvironmentStore
from tests.debian.conftest import PIN, R_REQUIREMENTS, BuiltRootfs
from tests.debian.helpers import RootfsKernel
from tests.sandbox.helpers import LoopThread

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def host_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_lock_names_every_installed_deb_and_stores_it(r_env: BuiltRootfs) -> None:
    data = DebianLockData.loads(r_env.lock.pylock)
    names = {p.name for p in data.packages}
    assert {"r-base-core", "r-cran-irkernel", "libc6", "dpkg"} <= names
    assert r_env.lock.backend == "deb"
    assert r_env.lock.version_of("r-cran-irkernel")
    # Exactly what dpkg installed, no more, no less.
    assert installed_packages(r_env.path) == data.installed_set()
    cache = DebCache()
    for package in [*data.packages, *data.build_tools]:
        assert cache.has(package.sha256), package.name
    # Spot-check the hashes of the stored files (all were verified on the way in).
    for package in sorted(data.packages, key=lambda p: p.size)[-5:]:
        assert sha256_file(cache.path(package.sha256)) == package.sha256
    assert {t.name for t in data.build_tools} == {"eatmydata", "libeatmydata1"}
    # The tree is read-only in the store, and small: no docs, man pages or translations.
    assert (r_env.path / "usr/bin").stat().st_mode & 0o222 == 0
    assert not list((r_env.path / "usr/share/man").glob("*/*"))
    assert not list((r_env.path / "usr/share/doc").glob("*/changelog*"))
    assert (r_env.path / "etc/dpkg/dpkg.cfg.d/99nbseal-path-filters").is_file()
    # The tree names the lock's mirror, not the build's scratch.
    assert data.sources[0].uri in (r_env.path / "etc/apt/sources.list").read_text()
    size = disk_usage([r_env.path])
    print(
        f"\nMEASURE r tree: {size / 2**20:.0f} MiB, {len(data.packages)} packages, "
        f".debs {sum(p.size for p in data.packages) / 2**20:.0f} MiB"
    )


def test_r_kernel_runs_sealed_in_the_tree(
    r_env: BuiltRootfs, loop_thread: LoopThread, runtime_dir: Path, workdir: Path, host_port: int
) -> None:
    assert find_rootfs_kernel_command(r_env.path).name == "ir"
    kernel = RootfsKernel(loop_thread, r_env.path, SandboxPolicy(workdir=workdir), runtime_dir)
    kernel.start()
    try:
        print(
            f"\nMEASURE r kernel start (RootfsLauncher + SubKernel): {kernel.start_seconds:.2f} s"
        )
        assert kernel.r("cat(sum(1:10))") == "55"
        assert kernel.r("cat(Sys.getenv('HOME'), getwd(), sep='|')") == (f"/home/nbseal|{workdir}")
        # The working directory is writable and is the host's; the tree is not.
        assert kernel.r("writeLines('from R', 'out.txt'); cat(file.access('/usr/lib', 2))") == "-1"
        assert (workdir / "out.txt").read_text() == "from R\n"
        # No network: the host's server on 127.0.0.1 is out of reach.
        probe = (
            f"r <- tryCatch({{ con <- socketConnection('127.0.0.1', {host_port}, timeout = 3); "
            "close(con); 'connected' }, error = function(e) 'refused', "
            "warning = function(w) 'refused'); cat(r)"
        )
        assert kernel.r(probe) == "refused"
        # A signal interrupt stops the cell and keeps the kernel.
        started = time.monotonic()
        out = kernel.execute_interrupted("Sys.sleep(30)", "signal", timeout=60)
        assert out.status == "abort", out  # IRkernel's reply to an interrupted cell
        assert time.monotonic() - started < 20
        assert kernel.r("cat(2 * 21)") == "42"
    finally:
        kernel.stop()


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="cutting the network (unshare --net) needs root; a regular user's offline "
    "rebuild is test_unprivileged's, which root runs",
)
def test_offline_rebuild_from_stored_debs_gives_the_same_packages(
    r_env: BuiltRootfs, loop_thread: LoopThread, runtime_dir: Path, workdir: Path
) -> None:
    data = DebianLockData.loads(r_env.lock.pylock)
    with tempfile.TemporaryDirectory(prefix="nbseal-offline-", dir=r_env.path.parent.parent) as tmp:
        lockfile = Path(tmp) / "lock.json"
        lockfile.write_text(r_env.lock.dumps())
        store = Path(tmp) / "store"
        env = dict(os.environ)
        # Any download attempt would go here and fail; and the namespace has no network.
        env["NBSEAL_DEBIAN_MIRROR"] = "http://127.0.0.1:9/debian"
        done = subprocess.run(
            [
                "unshare",
                "--net",
                sys.executable,
                "-m",
                "tests.debian.rebuild_offline",
                str(lockfile),
                str(store),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["mirror_reachable"] is False
        rebuilt = Path(result["path"])
        print(f"\nMEASURE r offline rebuild: {result['seconds']:.1f} s")
        assert rebuilt.name == r_env.lock.key
        assert installed_packages(rebuilt) == installed_packages(r_env.path)
        assert installed_packages(rebuilt) == data.installed_set()

        # Two trees of one lock, the rebuilt one's files hard-linked to the
        # first's (another store, so not done on publishing): about one tree.
        apart = disk_usage([r_env.path, rebuilt])
        shared = share_identical_files(rebuilt, [r_env.path])
        together = disk_usage([r_env.path, rebuilt])
        print(
            f"MEASURE sharing: {apart / 2**20:.0f} MiB -> {together / 2**20:.0f} MiB "
            f"({together / apart:.2f}x); {shared.summary()}"
        )
        assert together < 0.6 * apart

        # The rebuilt, hard-linked tree runs the kernel too.
        kernel = RootfsKernel(loop_thread, rebuilt, SandboxPolicy(workdir=workdir), runtime_dir)
        kernel.start()
        try:
            assert kernel.r("cat(sum(1:10))") == "55"
        finally:
            kernel.stop()


def test_cleared_deb_store_refetches_verified_debs_from_the_mirror(
    r_env: BuiltRootfs, tmp_path: Path
) -> None:
    data = DebianLockData.loads(r_env.lock.pylock)
    small = sorted(data.packages, key=lambda p: p.size)[:3]
    cache = DebCache(tmp_path / "debs")
    backend = DebianBackend(debs=cache, work_root=tmp_path / "work")
    partial = DebianLockData(
        data.suite, data.architecture, data.include, data.sources, tuple(small)
    )
    asyncio.run(backend.ensure_debs(partial, Progress("r")))
    for package in small:
        assert sha256_file(cache.path(package.sha256)) == package.sha256


def test_a_second_r_environment_shares_files_with_the_first_in_the_store(
    r_env: BuiltRootfs, loop_thread: LoopThread, runtime_dir: Path, workdir: Path
) -> None:
    """R + IRkernel, and the same plus one small package: the store holds about one tree."""
    steps: list[str] = []
    progress = Progress("r2")
    progress.subscribe(lambda event: steps.append(event.step))
    spec = EnvironmentSpec("r2", (*R_REQUIREMENTS, "deb:r-cran-magrittr"), PIN)

    async def run() -> Path:
        with tempfile.TemporaryDirectory(prefix="nbseal-resolve-") as tmp:
            lock = await DebianBackend().resolve(spec, Path(tmp), progress)
        return (await EnvironmentStore().ensure(lock, DebianBackend(), progress)).path

    second = asyncio.run(run())
    try:
        packages = {name for name, _, _ in installed_packages(second)}
        assert "r-cran-magrittr" in packages
        assert packages - {"r-cran-magrittr"} == {n for n, _, _ in installed_packages(r_env.path)}
        first_size, second_size = disk_usage([r_env.path]), disk_usage([second])
        together = disk_usage([r_env.path, second])
        ratio = together / (first_size + second_size)
        print(
            f"\nMEASURE store sharing: {first_size / 2**20:.0f} + {second_size / 2**20:.0f} MiB "
            f"-> {together / 2**20:.0f} MiB ({ratio:.2f}x); "
            + ("; ".join(s for s in steps if "hard-linked" in s) or "stored before (shared then)")
        )
        assert ratio < 0.6
        # A big file of both is one inode, read-only.
        libr = Path("usr/lib/R/lib/libR.so")
        assert (second / libr).stat().st_ino == (r_env.path / libr).stat().st_ino
        assert (second / libr).stat().st_mode & 0o222 == 0
        # Both kernels still run from their (read-only, shared) trees.
        for tree, code in (
            (r_env.path, "cat(sum(1:10))"),
            (second, "suppressMessages(library(magrittr)); cat(1:10 %>% sum)"),
        ):
            policy = SandboxPolicy(workdir=workdir)
            kernel = RootfsKernel(loop_thread, tree, policy, runtime_dir)
            kernel.start()
            try:
                assert kernel.r(code) == "55"
            finally:
                kernel.stop()
    finally:
        if not os.environ.get("NBSEAL_TEST_CACHE_DIR"):
            remove_tree(second)


def test_unknown_debian_package_is_named(mmdebstrap: str, tmp_path: Path) -> None:
    spec = EnvironmentSpec("x", ("deb:nbseal-no-such-package",), PIN)
    backend = DebianBackend(work_root=tmp_path / "work")
    with pytest.raises(DebianResolutionError) as caught:
        asyncio.run(backend.resolve(spec, tmp_path / "resolve", Progress("x")))
    assert "has no package 'nbseal-no-such-package'" in caught.value.message
    assert "apt-cache search" in caught.value.hint
    assert not list((tmp_path / "work" / "resolved").iterdir())


def test_environment_without_a_kernel_is_refused(mmdebstrap: str, tmp_path: Path) -> None:
    spec = EnvironmentSpec("x", ("deb:hello",), PIN)
    backend = DebianBackend(work_root=tmp_path / "work")
    with pytest.raises(BuildError, match="holds no Jupyter kernel") as caught:
        asyncio.run(backend.resolve(spec, tmp_path / "resolve", Progress("x")))
    assert "deb:r-cran-irkernel" in caught.value.hint
    assert not list((tmp_path / "work" / "resolved").iterdir())
