"""Data store costs: download throughput against curl, and the cost of a store hit.

Everything uses a private, empty nbseal cache (``NBSEAL_CACHE_DIR`` is set to a
temporary directory before any nbseal module is imported), removed at the end.

(a) download: a large file (``--size-mb``, default 512) from a loopback HTTP
    server. nbseal is ``DataStore.add(url)`` in this process (download,
    SHA-256, write, rename into the store); the baselines write the same file
    to the same disk: ``curl -s -o FILE URL``, then ``curl`` followed by
    ``sha256sum FILE`` (download and verify) and by ``openssl dgst -sha256
    FILE`` (the same with a SHA-NI hash). Runs alternate (order rotated every
    round, ``sync`` before each, untimed); medians of ``--runs``. The server
    is tests/dataserver.py in a process of its own (so it shares no GIL with
    nbseal), and ``curl -o /dev/null`` against it each round is its ceiling.
    Target: nbseal at least 0.9x curl's throughput.
(b) store hit of a large entry (``--hit-size-mb``, default 1024, generated
    locally and added untimed): ``DataStore.ensure(url, sha256)`` on it against
    the same call on a 4-byte entry (median of ``--hit-calls``), and a notebook
    cell ``#seal data NAME <- URL sha256:HEX`` + ``os.path.getsize(NAME)`` run
    by ``nbseal run`` (sealed) with the large file against a tiny one (median
    of ``--notebook-runs`` alternating runs). The URL points at a closed
    port, so a cell that missed the store would fail; the cell also prints the
    file's inode, which must be the store file's (a bind mount, not a copy).

    python bench/bench_data.py [--size-mb 512] [--runs 3] [--hit-size-mb 1024]
                               [--hit-calls 200] [--notebook-runs 5] [--only a b]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
# The loopback server of the tests, run as a child process. It imports
# tests.dataserver, which is not installed: the repo root goes on sys.path.
SERVER_CODE = """
import sys
sys.path.insert(0, sys.argv[1])  # the repo root, so that tests.dataserver imports
from tests.dataserver import serve
with serve() as server:
    print(server.url, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""
# A store miss would try this and fail: nothing listens on the discard port.
DEAD_URL = "http://127.0.0.1:9/"
CEILING = "server ceiling (/dev/null)"
CELL_RE = re.compile(r"^\[(\d+)/\d+\] cell \d+: (ok|ERROR) \(([\d.]+) s\)", re.MULTILINE)


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def data_server() -> Iterator[str]:
    """The tests' loopback server in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(REPO)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the data server did not start (said {url!r})")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------
# (a) download throughput
# ---------------------------------------------------------------------------
def _timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, proc.stdout


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def bench_download(size_mb: int, runs: int, work: Path) -> None:
    from nbseal.datastore import DataStore
    from nbseal.progress import Progress

    size = size_mb * MIB
    print(f"\n(a) download of {size_mb} MiB ({size / 1e6:.0f} MB) from a loopback server")
    curl = shutil.which("curl")
    sha256sum = shutil.which("sha256sum")
    openssl = shutil.which("openssl")
    if curl is None or sha256sum is None:
        print("    SKIPPED: needs curl and sha256sum on PATH")
        return
    store = DataStore()
    target = work / "curl.bin"
    digests: dict[str, set[str]] = {}

    with data_server() as base:
        url = f"{base}big/{size}"
        print(f"    server: tests/dataserver.py /big/SIZE in a child process; URL {url}")
        print(f"    nbseal:  DataStore(root={store.root}).add(URL)  (in this process)")
        print(f"    curl:    curl -s -o {target} URL")
        print(f"    +sha256: curl ... && sha256sum {target}")
        if openssl:
            print(f"    +openssl: curl ... && openssl dgst -sha256 -r {target}")
        print(f"    ceiling: curl -s -o /dev/null URL   ({_curl_version(curl)})")

        def nbseal() -> float:
            started = time.perf_counter()
            stored = asyncio.run(store.add(url, Progress("bench")))
            seconds = time.perf_counter() - started
            assert stored.size == size, stored
            assert not stored.reused, stored
            digests.setdefault("nbseal", set()).add(stored.sha256)
            _remove(stored.path)  # the next run stores it afresh
            return seconds

        def curl_only() -> float:
            seconds, _ = _timed([curl, "-s", "-S", "-f", "-o", str(target), url])
            assert target.stat().st_size == size
            _remove(target)
            return seconds

        def curl_then(hasher: list[str], name: str) -> Callable[[], float]:
            def run() -> float:
                seconds, _ = _timed([curl, "-s", "-S", "-f", "-o", str(target), url])
                more, out = _timed([*hasher, str(target)])
                digests.setdefault(name, set()).add(out.split()[0])
                _remove(target)
                return seconds + more

            return run

        def ceiling() -> float:
            return _timed([curl, "-s", "-S", "-f", "-o", "/dev/null", url])[0]

        kinds: dict[str, Callable[[], float]] = {
            "curl -o FILE": curl_only,
            "curl + sha256sum": curl_then([sha256sum], "sha256sum"),
        }
        if openssl:
            kinds["curl + openssl sha256"] = curl_then([openssl, "dgst", "-sha256", "-r"], "ssl")
        kinds["nbseal DataStore.add"] = nbseal
        kinds[CEILING] = ceiling

        print("    one untimed warm-up of each, then alternating runs (order rotated each round)")
        for run in kinds.values():
            os.sync()
            run()
        times: dict[str, list[float]] = {name: [] for name in kinds}
        names = list(kinds)
        for i in range(runs):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                os.sync()  # no dirty pages of the previous run are written back during this one
                times[name].append(kinds[name]())

    agreed = {d for found in digests.values() for d in found}
    check = "all agree" if len(agreed) == 1 else f"DISAGREE: {digests}"
    print(f"    SHA-256 {next(iter(agreed))[:16]}... ({check})")
    rates = {name: _mbps(size, statistics.median(t)) for name, t in times.items()}
    ours = rates["nbseal DataStore.add"]
    print(f"    median of {runs} runs each; ratio = nbseal MB/s / this row's MB/s")
    print(f"{'method':<30}{'median s':>10}{'MB/s':>9}{'nbseal/x':>10}   all runs (MB/s)")
    for name, values in times.items():
        spread = ", ".join(f"{_mbps(size, t):.0f}" for t in values)
        shown = "" if name == CEILING else f"{ours / rates[name]:.2f}x"
        print(
            f"{name:<30}{statistics.median(values):>10.3f}{rates[name]:>9.0f}{shown:>10}   {spread}"
        )
    ratio = ours / rates["curl -o FILE"]
    verdict = "meets" if ratio >= 0.9 else "MISSES"
    print(f"nbseal / curl throughput {ratio:.2f}x ({verdict} the 0.9x target)")
    print(
        f"nbseal / (curl + sha256sum) {ours / rates['curl + sha256sum']:.2f}x; "
        f"server ceiling is {rates[CEILING] / rates['curl -o FILE']:.1f}x "
        "curl's rate to a file"
    )
    if rates[CEILING] < 2 * rates["curl -o FILE"]:
        print("    WARNING: the server is within 2x of curl-to-file; it may be the bottleneck")


def _curl_version(curl: str) -> str:
    out = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False)
    return " ".join(out.stdout.split()[:2])


# ---------------------------------------------------------------------------
# (b) store hit
# ---------------------------------------------------------------------------
def _make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for start in range(0, size, MIB):
            out.write(block[: min(MIB, size - start)])


async def _ensure_times(store: Any, url: str, sha256: str, calls: int) -> list[float]:
    from nbseal.progress import Progress

    times = []
    for _ in range(calls):
        started = time.perf_counter()
        stored = await store.ensure(url, sha256, Progress("bench"))
        times.append(time.perf_counter() - started)
        assert stored.reused, stored
    return times


def _notebook(name: str, sha256: str) -> Any:
    import nbformat

    sources = [
        "1+1",
        f"#seal data {name} <- {DEAD_URL}{name} sha256:{sha256}\n"
        f"import os; (os.path.getsize({name!r}), os.stat({name!r}).st_ino)",
        f"os.path.getsize({name!r})",
    ]
    cells = [nbformat.v4.new_code_cell(s) for s in sources]  # type: ignore[no-untyped-call]
    return nbformat.v4.new_notebook(cells=cells)  # type: ignore[no-untyped-call]


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_notebook(path: Path, output: Path) -> dict[str, Any]:
    """``nbseal run`` the notebook; per-cell seconds (reported and from message dates)."""
    command = [str(REPO / ".venv" / "bin" / "nbseal"), "run", str(path), "-o", str(output)]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    reported = [float(m.group(3)) for m in CELL_RE.finditer(proc.stderr)]
    import nbformat

    ran = nbformat.read(str(output), as_version=4)  # type: ignore[no-untyped-call]
    # busy -> idle of each cell, from the kernel's own message dates.
    kernel_side = []
    for cell in ran.cells:
        timing = cell.metadata.get("execution", {})
        if "iopub.status.busy" in timing and "iopub.status.idle" in timing:
            busy = _stamp(timing["iopub.status.busy"])
            kernel_side.append(_stamp(timing["iopub.status.idle"]) - busy)
    results = []
    for cell in ran.cells:
        texts = [o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])]
        errors = [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", []) if "ename" in o]
        results.append((texts[-1] if texts else "") + (f" ERROR {errors}" if errors else ""))
    return {"wall": wall, "reported": reported, "kernel": kernel_side, "results": results}


def bench_hit(size_mb: int, calls: int, notebook_runs: int, work: Path) -> None:
    from nbseal.datastore import DataStore
    from nbseal.progress import Progress

    size = size_mb * MIB
    print(f"\n(b) store hit: a {size_mb} MiB entry against a 4-byte one")
    store = DataStore()
    source = work / "big.bin"
    started = time.perf_counter()
    _make_file(source, size)
    big = asyncio.run(store.add(str(source), Progress("bench")))
    source.unlink()
    tiny_source = work / "tiny.bin"
    tiny_source.write_bytes(b"tiny")
    tiny = asyncio.run(store.add(str(tiny_source), Progress("bench")))
    print(
        f"    generated and added both via DataStore.add(local path) in "
        f"{time.perf_counter() - started:.1f} s (untimed); big {big.sha256[:12]}, "
        f"tiny {tiny.sha256[:12]}"
    )

    # DataStore.ensure, one event loop, alternating big and tiny.
    print(f"    DataStore.ensure(URL, sha256) on the stored entry, {calls} calls each")
    times: dict[str, list[float]] = {"tiny": [], "big": []}

    async def hits() -> None:
        for entry in (big, tiny):  # warm-up
            await _ensure_times(store, DEAD_URL + "x", entry.sha256, 5)
        for _ in range(calls):
            for name, entry in (("tiny", tiny), ("big", big)):
                times[name] += await _ensure_times(store, DEAD_URL + name, entry.sha256, 1)

    asyncio.run(hits())
    stat_us = statistics.median(_stat_times(big.path, calls))
    print(f"{'entry':<30}{'median us':>10}{'p90 us':>10}{'ratio':>8}")
    base = statistics.median(times["tiny"])
    for name, label in (("tiny", "4 B"), ("big", f"{size_mb} MiB")):
        values = sorted(times[name])
        p90 = values[int(0.9 * (len(values) - 1))]
        median = statistics.median(values)
        print(f"{label:<30}{1e6 * median:>10.1f}{1e6 * p90:>10.1f}{median / base:>7.2f}x")
    print(f"    for scale: one os.stat() of the entry {1e6 * stat_us:.1f} us (median)")

    # The real kernel: nbseal run, sealed, big against tiny.
    nb_dir = work / "notebooks"
    nb_dir.mkdir()
    notebooks = {}
    for name, entry in (("tiny", tiny), ("big", big)):
        path = nb_dir / f"{name}.ipynb"
        import nbformat

        nbformat.write(_notebook(f"{name}.bin", entry.sha256), str(path))  # type: ignore[no-untyped-call]
        notebooks[name] = path
    nbseal_bin = REPO / ".venv" / "bin" / "nbseal"
    print(f"    notebook: cell 1 `1+1`; cell 2 `#seal data NAME <- {DEAD_URL}NAME sha256:HEX`")
    print("      + `(os.path.getsize(NAME), os.stat(NAME).st_ino)`; cell 3 `os.path.getsize(NAME)`")
    print(f"    NBSEAL_CACHE_DIR={os.environ['NBSEAL_CACHE_DIR']} {nbseal_bin} run NB -o OUT")
    print("    one untimed run of each first (builds the default environment), then alternating")
    started = time.perf_counter()
    for name, path in notebooks.items():
        run_notebook(path, nb_dir / f"{name}.warm.ipynb")
    print(f"    warm-up runs took {time.perf_counter() - started:.1f} s")
    runs: dict[str, list[dict[str, Any]]] = {"tiny": [], "big": []}
    for i in range(notebook_runs):
        order = ("tiny", "big") if i % 2 == 0 else ("big", "tiny")
        for name in order:
            runs[name].append(run_notebook(notebooks[name], nb_dir / f"{name}.out.ipynb"))
    print(f"    results of the last big run: {runs['big'][-1]['results']}")
    inode = big.path.stat().st_ino
    seen = runs["big"][-1]["results"][1]
    same = f", {inode})" in seen
    print(
        f"    store file inode {inode}: the kernel sees "
        f"{'the same file (bind mount, no copy)' if same else 'A DIFFERENT FILE'}"
    )
    print(f"    median of {notebook_runs} runs each (s); reported = nbseal run's per-cell time,")
    print("    kernel = busy->idle from the message dates")
    print(f"{'metric':<34}{'tiny':>9}{'big':>9}{'ratio':>8}{'big-tiny':>10}")

    def row(label: str, pick: Callable[[dict[str, Any]], float]) -> None:
        t = statistics.median(pick(r) for r in runs["tiny"])
        b = statistics.median(pick(r) for r in runs["big"])
        print(f"{label:<34}{t:>9.3f}{b:>9.3f}{b / t:>7.2f}x{1000 * (b - t):>+8.1f}ms")

    def reported(index: int) -> Callable[[dict[str, Any]], float]:
        return lambda r: float(r["reported"][index])

    for index in range(3):
        row(f"cell {index + 1} reported", reported(index))
    if all(len(r["kernel"]) == 3 for rs in runs.values() for r in rs):
        row("cell 2 kernel busy->idle", lambda r: r["kernel"][1])
    row("whole `nbseal run` wall time", lambda r: r["wall"])
    spread = {k: [round(1000 * r["reported"][1]) for r in v] for k, v in runs.items()}
    print(f"    all cell-2 reported times (ms): {json.dumps(spread)}")


def _stat_times(path: Path, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        path.stat()
        times.append(time.perf_counter() - started)
    return times


# ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", nargs="+", choices=["a", "b"], default=["a", "b"])
    parser.add_argument("--size-mb", type=int, default=512, help="(a) MiB to download")
    parser.add_argument("--runs", type=int, default=3, help="(a) runs of each method")
    parser.add_argument("--hit-size-mb", type=int, default=1024, help="(b) MiB of the entry")
    parser.add_argument("--hit-calls", type=int, default=200, help="(b) ensure() calls each")
    parser.add_argument("--notebook-runs", type=int, default=5, help="(b) nbseal runs each")
    parser.add_argument("--keep", action="store_true", help="keep the private cache dir")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-data-"))
    # Before any nbseal module is imported (they are imported inside the benchmarks).
    os.environ["NBSEAL_CACHE_DIR"] = str(work / "cache")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    print(f"private nbseal cache {work / 'cache'}; {os.cpu_count()} CPUs, load average {_load()}")
    try:
        if "a" in args.only:
            bench_download(args.size_mb, args.runs, work)
            print(f"    load average after (a): {_load()}")
        if "b" in args.only:
            bench_hit(args.hit_size_mb, args.hit_calls, args.notebook_runs, work)
            print(f"    load average after (b): {_load()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            _cleanup(work)


def _cleanup(work: Path) -> None:
    from nbseal.fsutil import remove_tree

    # The stores hold read-only files and trees; remove_tree makes them writable first.
    for sub in ("cache/envs", "cache/data"):
        if (work / sub).exists():
            remove_tree(work / sub)
    shutil.rmtree(work, ignore_errors=True)
    if work.exists():
        print(f"WARNING: could not remove {work} entirely")


if __name__ == "__main__":
    main()
