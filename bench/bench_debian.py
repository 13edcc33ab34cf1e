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
(h) warm start of the tree's kernel: a SubKernel started by ``RootfsLauncher``
    until it answers kernel_info, against the field notes' bwrap command line
    with ``jupyter_client`` waiting for the same reply; alternating runs,
    medians. Target: under 1.2x.
(j) warm start through nbseal: the nbseal kernel started by jupyter_client's
    KernelManager for a notebook whose metadata holds the R lock (the tree is
    in the store), until the output of ``cat(sum(1:10))`` of its R cell
    arrives; against the field notes' bwrap command line started the same way
    until the same output. Also the same cell sent to an nbseal kernel that is
    already up (what a user opening a notebook waits for after the kernel
    started). Alternating runs, medians. Target: under 1.2x.
(i) sharing: a second environment (R + deb:r-cran-magrittr) built into the
    same store, which hard-links its files to identical ones of the first
    when it publishes it; disk use of the two (each inode once) against the
    sum of their sizes. Target: under 0.6x.

    python bench/bench_debian.py [--only f g h j i] [--start-runs 10]
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
# The nbseal kernelspec of this checkout, found by jupyter_client's KernelManager.
os.environ["JUPYTER_PATH"] = str(WORK / "share" / "jupyter")
os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
sys.path.insert(0, str(REPO))  # tests.* helpers

from jupyter_client.blocking.client import BlockingKernelClient  # noqa: E402
from jupyter_client.connect import write_connection_file  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402
from tests.debian.helpers import RootfsKernel  # noqa: E402
from tests.kernel.helpers import execute  # noqa: E402
from tests.sandbox.helpers import LoopThread  # noqa: E402

from nbseal.backends.debian import (  # noqa: E402
    APT_OPTIONS,
    DEFAULT_DPKG_OPTIONS,
    DebianBackend,
    host_sources,
    host_suite,
)
from nbseal.backends.debian.tree import disk_usage  # noqa: E402
from nbseal.fsutil import remove_tree  # noqa: E402
from nbseal.kernel.kernelspec import install_kernelspec  # noqa: E402
from nbseal.lock import Lock  # noqa: E402
from nbseal.plan import EnvironmentSpec, plan_notebook  # noqa: E402
from nbseal.progress import Progress  # noqa: E402
from nbseal.sandbox import SandboxPolicy  # noqa: E402
from nbseal.sandbox.available import find_bwrap  # noqa: E402
from nbseal.store import EnvironmentStore  # noqa: E402

R = ("deb:r-base-core", "deb:r-cran-irkernel")
R_MORE = (*R, "deb:r-cran-magrittr")
R_CELL = f"#seal pin 2026-11-01\n#seal env r <- {' '.join(R)} kernel=ir\ncat(sum(1:10))"
# The pin as the notebook's directive gives it, so the notebook's lock fits.
PIN = plan_notebook([R_CELL]).locked_environments()["r"].spec().pin
MIB = 1 << 20


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def resolve_and_store(
    requirements: tuple[str, ...], steps: list[str] | None = None
) -> tuple[Lock, Path, float]:
    spec = EnvironmentSpec("r", requirements, PIN)
    progress = Progress("r")
    if steps is not None:
        progress.subscribe(lambda event: steps.append(event.step))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="resolve-", dir=WORK) as tmp:
        lock = await DebianBackend().resolve(spec, Path(tmp), progress)
    built = await EnvironmentStore().ensure(lock, DebianBackend(), progress)
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


def _direct_argv(tree: Path, connection: str, ipc: Path) -> list[str]:
    """The field notes' command line: the tree bound read-only at /, the kernel's ipc folder."""
    return [
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


def start_direct(tree: Path, code: str | None = None) -> float:
    """The field notes' command line until the kernel answers kernel_info (or runs ``code``)."""
    ipc = Path(tempfile.mkdtemp(prefix="nbd-", dir="/tmp"))
    connection, _ = write_connection_file(
        str(ipc / "conn.json"), transport="ipc", ip=str(ipc / "k")
    )
    started = time.monotonic()
    process = subprocess.Popen(
        _direct_argv(tree, connection, ipc), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = BlockingKernelClient(connection_file=connection)
    client.load_connection_file()
    # No heartbeat: a kernel not beating within its first second would count as dead.
    client.start_channels(hb=False)
    try:
        client.wait_for_ready(timeout=60)
        if code is not None:
            out = execute(client, code)
            assert out.stdout == "55", out.reply
        return time.monotonic() - started
    finally:
        client.stop_channels()
        process.kill()
        process.wait()
        shutil.rmtree(ipc, ignore_errors=True)


def r_notebook(lock: Lock) -> Path:
    """A notebook of one R cell whose metadata holds ``lock`` (so nothing is resolved)."""
    import nbformat

    from nbseal.notebook import set_locks, write_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(R_CELL))
    set_locks(notebook, {"r": lock})
    path = WORK / "notebooks" / "r.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_notebook(notebook, path)
    return path


def _nbseal_kernel(notebook: Path) -> tuple[KernelManager, BlockingKernelClient]:
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(cwd=str(notebook.parent), env=dict(os.environ, JPY_SESSION_NAME=notebook.name))
    kc = km.client()
    kc.start_channels()
    return km, kc


def _stop(km: KernelManager, kc: BlockingKernelClient) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def start_nbseal_kernel(notebook: Path) -> tuple[float, float]:
    """The nbseal kernel for ``notebook``, from its start to the R cell's output.

    Returns (from the kernel's start, from the cell's execute_request).
    """
    started = time.monotonic()
    km, kc = _nbseal_kernel(notebook)
    try:
        kc.wait_for_ready(timeout=120)
        sent = time.monotonic()
        out = execute(kc, R_CELL, timeout=300)
        assert out.status == "ok", out.reply
        assert out.stdout.endswith("55"), out.outputs
        done = time.monotonic()
        return done - started, done - sent
    finally:
        _stop(km, kc)


def _ratio_line(label: str, ours: list[float], base: list[float], what: str) -> str:
    o, b = statistics.median(ours), statistics.median(base)
    verdict = "meets" if o / b < 1.2 else "MISSES"
    return (
        f"{label}: {what} {1000 * o:.0f} ms, direct bwrap {1000 * b:.0f} ms, "
        f"{o / b:.2f}x ({verdict} the 1.2x target)\n"
        f"    all (ms): ours {[round(1000 * t) for t in ours]} "
        f"direct {[round(1000 * t) for t in base]}"
    )


def bench_start(tree: Path, runs: int) -> None:
    loop = LoopThread()
    try:
        start_nbseal(loop, tree)
        start_direct(tree)  # warm-ups
        ours, base = [], []
        for i in range(runs):
            if i % 2:
                base.append(start_direct(tree))
            ours.append(start_nbseal(loop, tree))
            if not i % 2:
                base.append(start_direct(tree))
    finally:
        loop.close()
    print(
        _ratio_line(
            f"(h) warm start to kernel_info, median of {runs}", ours, base, "RootfsLauncher"
        )
    )


def bench_nbseal_kernel(lock: Lock, tree: Path, runs: int) -> None:
    notebook = r_notebook(lock)
    code = "cat(sum(1:10))"
    start_nbseal_kernel(notebook)
    start_direct(tree, code)  # warm-ups
    whole, cell, base = [], [], []
    for i in range(runs):
        if i % 2:
            base.append(start_direct(tree, code))
        w, c = start_nbseal_kernel(notebook)
        whole.append(w)
        cell.append(c)
        if not i % 2:
            base.append(start_direct(tree, code))
    print(
        _ratio_line(
            f"(j) warm start to the result of {code}, median of {runs}",
            whole,
            base,
            "nbseal kernel (KernelManager start -> R cell output)",
        )
    )
    print(
        _ratio_line(
            "    the same, the nbseal kernel already up",
            cell,
            base,
            "R cell in a running nbseal kernel (execute_request -> output)",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=["f", "g", "h", "j", "i"])
    parser.add_argument("--start-runs", type=int, default=10)
    args = parser.parse_args()
    print(f"bench_debian: cache {WORK}; load average before: {load()}")
    install_kernelspec(prefix=str(WORK))
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
            bench_start(tree, args.start_runs)
        if "j" in args.only:
            bench_nbseal_kernel(lock, tree, args.start_runs)
            print(f"    (load {load()})")
        if "i" in args.only:
            steps: list[str] = []
            lock2, tree2, seconds2 = asyncio.run(resolve_and_store(R_MORE, steps))
            size2 = disk_usage([tree2])
            print(
                f"(i) resolve + store of R + magrittr: {seconds2:.1f} s, "
                f"{size2 / MIB:.0f} MiB, {len(lock2.packages())} packages"
            )
            both = disk_usage([tree, tree2])
            ratio = both / (size + size2)
            verdict = "meets" if ratio < 0.6 else "MISSES"
            shared = next((step for step in steps if "hard-linked" in step), "no sharing step")
            print(
                f"    store: {(size + size2) / MIB:.0f} MiB -> {both / MIB:.0f} MiB, "
                f"{ratio:.2f}x ({verdict} the 0.6x target); on publishing: {shared}"
            )
        print(f"load average after: {load()}")
    finally:
        remove_tree(WORK)


if __name__ == "__main__":
    main()
