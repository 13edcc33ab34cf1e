"""A corpus on Dask: ``nbseal verify --cluster local:2`` against ``nbseal verify -j 2``.

Sixteen default-environment notebooks (no ``#seal`` line; five plain cells,
one of which sleeps 0.5 s), locked and run once (untimed; this also builds
the default environment), then verified both ways, each as a subprocess,
wall clock from spawn to exit: the cluster's figure includes starting the
LocalCluster (two worker processes of one thread, which import nbseal). One
untimed warm-up of each, then alternating runs with the order swapped every
round; medians. Target (issue 18): cluster/local at most 1.1x.

Then the scheduler's overhead per notebook, in this process, on a warm
LocalCluster of two workers:

- dispatch: tasks that return at once an object the size of a notebook's
  ``verify --json``, submitted and gathered as ``nbseal verify`` does
  (``submit(pure=False)``, ``as_completed``): wall clock per task.
- in the real run: the workers' idle time while notebooks were waiting
  (two workers x the gathering's wall clock, less the time tasks computed,
  from Dask's task stream), per notebook; it includes the tail where one
  worker has finished and the other still runs its last notebook.

Everything runs against a fresh, private ``NBSEAL_CACHE_DIR`` and
``UV_CACHE_DIR`` (removed at the end).

Where the cluster's extra time goes: every process that verifies imports
nbformat, and with ``rfc3987_syntax`` installed (jupyterlab brings it) that
costs about 2-3 s of CPU (see bench_verify.py); ``-j 2`` pays it once, the
cluster three times (client and two workers) on two cores.
``--hide-rfc3987-syntax`` measures as if it were not installed.

    python bench/bench_dask.py [--runs 3] [--notebooks 16] [--dispatch 200]
                               [--hide-rfc3987-syntax]
"""

from __future__ import annotations

import argparse
import os
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


def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])}... failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def _end_to_end(paths: list[Path], runs: int) -> tuple[float, float]:
    nbseal = [sys.executable, "-m", "nbseal", "verify"]
    names = [str(path) for path in paths]
    commands = {
        "local": [*nbseal, "-j", "2", *names],
        "cluster": [*nbseal, "--cluster", "local:2", *names],
    }
    for argv in commands.values():
        _timed(argv)  # warm-up
    times: dict[str, list[float]] = {"local": [], "cluster": []}
    for round_ in range(runs):
        order = ["local", "cluster"] if round_ % 2 == 0 else ["cluster", "local"]
        for name in order:
            times[name].append(_timed(commands[name]))
            print(f"  round {round_ + 1}: {name} {times[name][-1]:.2f} s", flush=True)
    return statistics.median(times["local"]), statistics.median(times["cluster"])


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


def _overheads(paths: list[Path], dispatch: int) -> tuple[float, float, float, float]:
    from distributed import Client, LocalCluster, as_completed, get_task_stream

    from nbseal.distributed import verify_corpus
    from nbseal.verify import VerifyOptions

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("nbseal.distributed"))
        start = time.perf_counter() - started
        started = time.perf_counter()
        futures = [client.submit(_payload, i, pure=False) for i in range(dispatch)]
        for _ in as_completed(futures):
            pass
        per_task = (time.perf_counter() - started) / dispatch

        with get_task_stream(client) as stream:
            started = time.perf_counter()
            run = verify_corpus(paths, VerifyOptions(), scheduler=cluster.scheduler_address)
            wall = time.perf_counter() - started
        assert all(report.ok for report in run.reports)
        computing = sum(
            part["stop"] - part["start"]
            for task in stream.data
            for part in task["startstops"]
            if part["action"] == "compute"
        )
        idle = (2 * wall - computing) / len(paths)
        return start, per_task, idle, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--notebooks", type=int, default=16)
    parser.add_argument("--dispatch", type=int, default=200)
    parser.add_argument("--hide-rfc3987-syntax", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbseal-bench-dask-") as tmp:
        root = Path(tmp)
        os.environ["NBSEAL_CACHE_DIR"] = str(root / "cache")
        os.environ["UV_CACHE_DIR"] = str(root / "uv")
        if args.hide_rfc3987_syntax:  # a stub first on the path: `import rfc3987_syntax` fails
            (root / "hide").mkdir()
            (root / "hide" / "rfc3987_syntax.py").write_text("raise ImportError('hidden')\n")
            sys.path.insert(0, str(root / "hide"))
            hidden = [str(root / "hide"), os.environ.get("PYTHONPATH", "")]
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in hidden if p)
            print("rfc3987_syntax hidden")
        try:
            folder = root / "notebooks"
            folder.mkdir()
            paths = _prepare(folder, args.notebooks)
            print(f"{len(paths)} notebooks of {len(CELLS)} cells; {args.runs} runs each, medians")
            local, cluster = _end_to_end(paths, args.runs)
            print(f"nbseal verify -j 2:             {local:6.2f} s")
            print(f"nbseal verify --cluster local:2: {cluster:6.2f} s")
            print(f"cluster / local:                {cluster / local:6.2f}x  (target <= 1.1x)")
            start, per_task, idle, wall = _overheads(paths, args.dispatch)
            print(f"LocalCluster of 2 up, nbseal imported in its workers: {start:6.2f} s")
            tasks = f"{args.dispatch} report-sized tasks"
            print(f"dispatch, {tasks}: {per_task * 1000:6.1f} ms per task")
            print(
                f"warm cluster, {len(paths)} notebooks in {wall:.2f} s: "
                f"{idle * 1000:6.0f} ms of worker idle time per notebook"
            )
        finally:
            from nbseal.fsutil import remove_tree

            remove_tree(root / "cache")


if __name__ == "__main__":
    main()
