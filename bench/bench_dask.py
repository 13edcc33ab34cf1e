"""A corpus on Dask: ``nbseal verify --cluster local:2`` against ``nbseal verify -j 2``.

Sixteen default-environment notebooks (no ``#seal`` line; five plain cells,
one of which sleeps 0.5 s), locked and run once (untimed; this also builds
the default environment), then verified both ways, each as a subprocess,
wall clock from spawn to exit: the cluster's figure includes starting the
LocalCluster (two worker processes of one thread) and stopping it. One
untimed warm-up of each, then alternating runs with the order swapped every
round; medians. Target (issue 18): cluster/local at most 1.1x. Beside the
wall clock, the CPU seconds (user + system) of each command's whole process
tree: this process is a child subreaper, so what outlives its parent (the
forkserver, the workers) is reaped here and counted; on a shared machine the
CPU varies less than the wall clock.

Then, in this process, on a warm LocalCluster of two workers started as
``--cluster local:2`` starts them (:mod:`nbseal.localworkers`):

- dispatch: tasks that return at once an object the size of a notebook's
  ``verify --json``, submitted and gathered as ``nbseal verify`` does
  (``submit(pure=False)``, ``as_completed``): wall clock per task.
- the scheduler's overhead per notebook, in a real run: from the moment the
  task could have started (submitted, and its worker done with the notebook
  before) to the moment it started on the worker, plus from its end there to
  its result received by the client (``CorpusRun.submitted``/``received``,
  the payload's ``started``/``finished``): median and largest.

Everything runs against a fresh, private ``NBSEAL_CACHE_DIR`` and
``UV_CACHE_DIR`` (removed at the end).

Where the cluster's extra time went before the forkserver: every process that
verifies imports nbformat, and with ``rfc3987_syntax`` installed (jupyterlab
brings it) that costs 1-3 s of CPU (see bench_verify.py); ``-j 2`` paid it
once, the cluster three times (client and two spawned workers) on two cores,
and stopping two spawned workers took about 2 s more.
The ``nbseal`` command and the forkserver now keep that module out
(:mod:`nbseal.lean_imports`), so every process pays nothing for it.

    python bench/bench_dask.py [--runs 3] [--notebooks 16] [--dispatch 200]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

CELLS = (
    "import platform\nprint('hello from', platform.python_implementation())",
    "total = sum(i * i for i in range(100_000))\nprint(total)",
    "import time\ntime.sleep(0.5)\nprint(sorted(['delta', 'alpha', 'echo']))",
    "import json\nprint(json.dumps({'b': [1, 2, 3], 'a': total % 97}, sort_keys=True))",
    "import math\nmath.factorial(20)",
)


def _prepare(folder: Path, count: int) -> list[Path]:
    """``count`` locked notebooks holding the outputs of one run (untimed)."""
    from nbseal.locking import lock_notebook
    from nbseal.runner import run_notebook

    first = folder / "nb00.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, first)
    lock_notebook(first)
    run_notebook(first)
    paths = [first]
    for number in range(1, count):
        path = folder / f"nb{number:02d}.ipynb"
        path.write_bytes(first.read_bytes())
        paths.append(path)
    return paths


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphans of the commands timed here (a forkserver, its workers) become this process's."""
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_CHILD_SUBREAPER): errno {ctypes.get_errno()}")


def _reap_orphans(patience: float = 60.0) -> None:
    """Wait for every process the command left behind; fail if one outlives ``patience``."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no child left
        if pid == 0:
            time.sleep(0.05)
    raise SystemExit(f"processes outlived the timed command by {patience:g} s")


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str]) -> tuple[float, float]:
    """Wall clock of ``argv`` (spawn to exit) and the CPU of its process tree."""
    cpu = _cpu_of_children()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])}... failed:\n{proc.stdout}\n{proc.stderr}")
    _reap_orphans()
    return seconds, _cpu_of_children() - cpu


def _end_to_end(paths: list[Path], runs: int) -> dict[str, tuple[float, float]]:
    """Per command (local, cluster): the medians of its wall clock and of its CPU."""
    nbseal = [sys.executable, "-m", "nbseal", "verify"]
    names = [str(path) for path in paths]
    commands = {
        "local": [*nbseal, "-j", "2", *names],
        "cluster": [*nbseal, "--cluster", "local:2", *names],
    }
    for argv in commands.values():
        _timed(argv)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"local": [], "cluster": []}
    for round_ in range(runs):
        order = ["local", "cluster"] if round_ % 2 == 0 else ["cluster", "local"]
        for name in order:
            wall, cpu = _timed(commands[name])
            times[name].append((wall, cpu))
            print(f"  round {round_ + 1}: {name} {wall:.2f} s (CPU {cpu:.2f} s)", flush=True)
    return {
        name: (
            statistics.median(wall for wall, _ in runs_),
            statistics.median(cpu for _, cpu in runs_),
        )
        for name, runs_ in times.items()
    }


def _payload(index: int) -> dict[str, Any]:
    """An object the size of a five-cell notebook's ``verify --json``."""
    cells = [{"cell": n, "status": "reproduced", "note": "", "diff": []} for n in range(1, 6)]
    return {
        "notebook": f"/corpus/nb{index:05d}.ipynb",
        "ok": True,
        "seconds": 1.0,
        "problem": None,
        "counts": {"reproduced": 5, "differs": 0, "error": 0, "skipped": 0},
        "cells": cells,
    }


def _scheduler_overheads(run: Any) -> list[float]:
    """Per notebook: waiting for its worker beyond the worker's last notebook, plus the way back."""
    payloads = run.payloads
    overheads = []
    for i, payload in enumerate(payloads):
        before = [
            other["finished"]
            for other in payloads
            if other["worker"] == payload["worker"] and other["finished"] <= payload["started"]
        ]
        ready = max([run.submitted[i], *before])
        overheads.append((payload["started"] - ready) + (run.received[i] - payload["finished"]))
    return overheads


def _overheads(paths: list[Path], dispatch: int) -> tuple[float, float, list[float], float]:
    import dask
    from distributed import Client, LocalCluster, as_completed

    from nbseal.distributed import verify_corpus
    from nbseal.localworkers import CONFIG, start_forkserver
    from nbseal.verify import VerifyOptions

    started = time.perf_counter()
    start_forkserver()
    with (
        dask.config.set(CONFIG),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            preload=["nbseal.distributed"],
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter() - started
        started = time.perf_counter()
        futures = [client.submit(_payload, i, pure=False) for i in range(dispatch)]
        for _ in as_completed(futures):
            pass
        per_task = (time.perf_counter() - started) / dispatch

        started = time.perf_counter()
        run = verify_corpus(paths, VerifyOptions(), scheduler=cluster.scheduler_address)
        wall = time.perf_counter() - started
        assert all(report.ok for report in run.reports)
        return start, per_task, _scheduler_overheads(run), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--notebooks", type=int, default=16)
    parser.add_argument("--dispatch", type=int, default=200)
    args = parser.parse_args()
    _become_subreaper()
    with tempfile.TemporaryDirectory(prefix="nbseal-bench-dask-") as tmp:
        root = Path(tmp)
        os.environ["NBSEAL_CACHE_DIR"] = str(root / "cache")
        os.environ["UV_CACHE_DIR"] = str(root / "uv")
        try:
            folder = root / "notebooks"
            folder.mkdir()
            paths = _prepare(folder, args.notebooks)
            print(f"{len(paths)} notebooks of {len(CELLS)} cells; {args.runs} runs each, medians")
            medians = _end_to_end(paths, args.runs)
            (local, local_cpu), (cluster, cluster_cpu) = medians["local"], medians["cluster"]
            print(f"nbseal verify -j 2:              {local:6.2f} s (CPU {local_cpu:.2f} s)")
            print(f"nbseal verify --cluster local:2: {cluster:6.2f} s (CPU {cluster_cpu:.2f} s)")
            print(f"cluster / local:                 {cluster / local:6.2f}x  (target <= 1.1x)")
            print(f"CPU, cluster / local:            {cluster_cpu / local_cpu:6.2f}x")
            start, per_task, overheads, wall = _overheads(paths, args.dispatch)
            print(f"LocalCluster of 2 up, nbseal imported in its workers: {start:6.2f} s")
            tasks = f"{args.dispatch} report-sized tasks"
            print(f"dispatch, {tasks}: {per_task * 1000:6.1f} ms per task")
            print(
                f"warm cluster, {len(paths)} notebooks in {wall:.2f} s: scheduler overhead "
                f"per notebook {statistics.median(overheads) * 1000:.1f} ms median, "
                f"{max(overheads) * 1000:.1f} ms largest"
            )
        finally:
            from nbseal.fsutil import remove_tree

            remove_tree(root / "cache")


if __name__ == "__main__":
    main()
