"""Debian root file systems: build, offline rebuild, kernel start and store sharing.

Uses a private, empty nbseal cache (``NBSEAL_CACHE_DIR`` is set to a temporary
directory before any nbseal module is imported), removed at the end. Needs
root and mmdebstrap (``apt-get install mmdebstrap uidmap``) and the host's
Debian mirror.

(f) build: ``DebianBackend.resolve`` of deb:r-base-core deb:r-cran-irkernel
    (mmdebstrap from the mirror, lock, .debs into the cache; the tree it
    builds is the one the store keeps) against the raw mmdebstrap command of
    the field notes with the same options (no hooks to keep .debs).
(g) offline rebuild: ``EnvironmentStore.ensure`` of that lock into a second,
    empty store, run under ``unshare --net`` (no network at all), from the
    stored .debs.
(h) warm start: a SubKernel of that tree started by ``RootfsLauncher`` until
    it answers kernel_info, against the field notes' bwrap command line with
    ``jupyter_client`` waiting for the same reply; alternating runs, medians.
    Target: under 1.2x.
(i) sharing: a second environment (R + deb:r-cran-data.table) next to the
    first, both hard-linked with util-linux ``hardlink``; disk use of the two
    against the sum of their sizes. Target: under 0.6x.

    python bench/bench_debian.py [--only f g h i] [--start-runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(tempfile.mkdtemp(prefix="nbseal-bench-debian-"))
os.environ["NBSEAL_CACHE_DIR"] = str(WORK / "cache")
sys.path.insert(0, str(REPO))  # tests.* helpers

from jupyter_client.blocking.client import BlockingKernelClient  # noqa: E402
from jupyter_client.connect import write_connection_file  # noqa: E402
from tests.debian.helpers import RootfsKernel  # noqa: E402
from tests.sandbox.helpers import LoopThread  # noqa: E402

from nbseal.backends.debian import (  # noqa: E402
    APT_OPTIONS,
    DEFAULT_DPKG_OPTIONS,
    DebianBackend,
    disk_usage,
    host_sources,
    host_suite,
    share_identical_files,
)
from nbseal.fsutil import remove_tree  # noqa: E402
from nbseal.lock import Lock  # noqa: E402
from nbseal.plan import EnvironmentSpec  # noqa: E402
from nbseal.progress import Progress  # noqa: E402
from nbseal.sandbox import SandboxPolicy  # noqa: E402
from nbseal.sandbox.bwrap import find_bwrap  # noqa: E402
from nbseal.store import EnvironmentStore  # noqa: E402

PIN = "2026-11-01T00:00:00Z"
R = ("deb:r-base-core", "deb:r-cran-irkernel")
R_MORE = (*R, "deb:r-cran-data.table")
MIB = 1 << 20


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def resolve_and_store(requirements: tuple[str, ...]) -> tuple[Lock, Path, float]:
    spec = EnvironmentSpec("r", requirements, PIN)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="resolve-", dir=WORK) as tmp:
        lock = await DebianBackend().resolve(spec, Path(tmp), Progress("r"))
    built = await EnvironmentStore().ensure(lock, DebianBackend(), Progress("r"))
    return lock, built.path, time.monotonic() - started


def raw_mmdebstrap(dest: Path) -> float:
    suite = host_suite()
    argv = [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=apt",
        "--include=r-base-core,r-cran-irkernel",
        *(f"--aptopt={o}" for o in APT_OPTIONS),
        "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
        *(f"--dpkgopt={o}" for o in DEFAULT_DPKG_OPTIONS),
        suite,
        str(dest),
        *(s.line() for s in host_sources(suite)),
    ]
    print("    raw: " + " ".join(argv))
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - started


def offline(lock: Lock) -> tuple[Path, float]:
    lockfile = WORK / "lock.json"
    lockfile.write_text(lock.dumps())
    env = dict(os.environ, NBSEAL_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    done = subprocess.run(
        [
            "unshare",
            "--net",
            sys.executable,
            "-m",
            "tests.debian.rebuild_offline",
            str(lockfile),
            str(WORK / "store2"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mirror_reachable"] is False
    return Path(result["path"]), float(result["seconds"])


def start_nbseal(loop: LoopThread, tree: Path) -> float:
    runtime = Path(tempfile.mkdtemp(prefix="nbs-", dir="/tmp"))
    workdir = Path(tempfile.mkdtemp(prefix="nbseal-work-"))
    kernel = RootfsKernel(loop, tree, SandboxPolicy(workdir=workdir), runtime)
    try:
        kernel.start()
        return kernel.start_seconds
    finally:
        kernel.stop()
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def start_direct(tree: Path) -> float:
    """The field notes' command line, the kernel answering kernel_info."""
    ipc = Path(tempfile.mkdtemp(prefix="nbd-", dir="/tmp"))
    connection, _ = write_connection_file(
        str(ipc / "conn.json"), transport="ipc", ip=str(ipc / "k")
    )
    argv = [
        find_bwrap(),
        "--ro-bind",
        str(tree),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--bind",
        str(ipc),
        str(ipc),
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "R",
        "--slave",
        "-e",
        "IRkernel::main()",
        "--args",
        connection,
    ]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        return time.monotonic() - started
    finally:
        client.stop_channels()
        process.kill()
        process.wait()
        shutil.rmtree(ipc, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=["f", "g", "h", "i"])
    parser.add_argument("--start-runs", type=int, default=10)
    args = parser.parse_args()
    print(f"bench_debian: cache {WORK}; load average before: {load()}")
    try:
        lock, tree, seconds = asyncio.run(resolve_and_store(R))
        size = disk_usage([tree])
        print(
            f"(f) resolve + store of R: {seconds:.1f} s, tree {size / MIB:.0f} MiB, "
            f"{len(lock.packages())} packages (load {load()})"
        )
        if "f" in args.only:
            raw = raw_mmdebstrap(WORK / "raw")
            print(
                f"    raw mmdebstrap, same packages and options: {raw:.1f} s "
                f"({seconds / raw:.2f}x); tree {disk_usage([WORK / 'raw']) / MIB:.0f} MiB"
            )
            remove_tree(WORK / "raw")
        if "g" in args.only:
            rebuilt, rebuild_seconds = offline(lock)
            print(
                f"(g) offline rebuild from stored .debs (unshare --net): "
                f"{rebuild_seconds:.1f} s (load {load()})"
            )
            remove_tree(rebuilt)
        if "h" in args.only:
            loop = LoopThread()
            try:
                start_nbseal(loop, tree)
                start_direct(tree)  # warm-ups
                ours, base = [], []
                for i in range(args.start_runs):
                    if i % 2:
                        base.append(start_direct(tree))
                        ours.append(start_nbseal(loop, tree))
                    else:
                        ours.append(start_nbseal(loop, tree))
                        base.append(start_direct(tree))
            finally:
                loop.close()
            o, b = statistics.median(ours), statistics.median(base)
            verdict = "meets" if o / b < 1.2 else "MISSES"
            print(
                f"(h) warm start to kernel_info, median of {args.start_runs}: "
                f"RootfsLauncher {1000 * o:.0f} ms, direct bwrap {1000 * b:.0f} ms, "
                f"{o / b:.2f}x ({verdict} the 1.2x target)"
            )
            print(
                f"    all (ms): ours {[round(1000 * t) for t in ours]} "
                f"direct {[round(1000 * t) for t in base]}"
            )
        if "i" in args.only:
            lock2, tree2, seconds2 = asyncio.run(resolve_and_store(R_MORE))
            size2 = disk_usage([tree2])
            print(
                f"(i) resolve + store of R + data.table: {seconds2:.1f} s, "
                f"{size2 / MIB:.0f} MiB, {len(lock2.packages())} packages"
            )
            started = time.monotonic()
            share_identical_files([tree, tree2])
            linked = time.monotonic() - started
            both = disk_usage([tree, tree2])
            ratio = both / (size + size2)
            verdict = "meets" if ratio < 0.6 else "MISSES"
            print(
                f"    hardlink {linked:.1f} s: {(size + size2) / MIB:.0f} MiB -> "
                f"{both / MIB:.0f} MiB, {ratio:.2f}x ({verdict} the 0.6x target)"
            )
        print(f"load average after: {load()}")
    finally:
        remove_tree(WORK)


if __name__ == "__main__":
    main()
