"""Warm kernels: the first result after a switch to a stored environment, warm and cold.

A notebook declares three environments (six 1.15/1.16/1.17, pinned), locked
and built in a temporary store. Each round opens it in a real nbseal kernel
twice, side by side: once as is (the stored environments warm up in the
background) and once with ``NBSEAL_WARM_MB=0`` (nothing beyond the first
environment starts before its cell). Once the warm kernels are up, the
cell that defines environment ``b`` and prints is sent to both; the time to
its first output is the switch. Also printed: each warm kernel's resident
memory and their sum (issue 17's target: three warm under 300 MB).

    python bench/bench_warm.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from nbseal.fsutil import remove_tree
from nbseal.runner.manager import InMemoryKernelSpecManager

PIN = "2025-06-01"
ENVIRONMENTS = {"a": "six==1.16.0", "b": "six==1.17.0", "c": "six==1.15.0"}
CELLS = [
    f"#seal pin {PIN}\n#seal env {name} <- {spec}\nimport six; print(six.__version__)"
    for name, spec in ENVIRONMENTS.items()
]
DESCRIBE = "application/vnd.nbseal.describe+json"


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c}
        for c in CELLS
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def _nbseal(*argv: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "nbseal", *argv], env=env, check=True, capture_output=True
    )


def _open(path: Path, env: dict[str, str]) -> tuple[KernelManager, BlockingKernelClient]:
    km = KernelManager(kernel_name="nbseal", kernel_spec_manager=InMemoryKernelSpecManager())
    km.start_kernel(cwd=str(path.parent), env={**env, "JPY_SESSION_NAME": path.name})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def _first_output(kc: BlockingKernelClient, code: str) -> tuple[float, str]:
    """Seconds from sending ``code`` to its first stdout, and all its stdout."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    first, text = 0.0, ""
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            first = first or time.perf_counter() - started
            text += msg["content"]["text"]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            kc.get_shell_msg(timeout=60)
            return first, text


def _rows(kc: BlockingKernelClient) -> list[dict[str, Any]]:
    msg_id = kc.execute("#seal describe")
    rows: list[dict[str, Any]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "display_data" and DESCRIBE in msg["content"]["data"]:
            rows = msg["content"]["data"][DESCRIBE]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            kc.get_shell_msg(timeout=60)
            return rows


def _wait_warm(
    kc: BlockingKernelClient, names: set[str], timeout: float = 120
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(kc)
        warm = {r["environment"].split()[0] for r in rows if r["state"].startswith("warm")}
        if names <= warm or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-warm-"))
    env = {**os.environ, "NBSEAL_CACHE_DIR": str(work / "cache"), "UV_CACHE_DIR": str(work / "uv")}
    try:
        path = work / "three.ipynb"
        _notebook(path)
        _nbseal("lock", str(path), env=env)
        _nbseal("run", str(path), "-o", str(work / "out.ipynb"), env=env)
        times: dict[str, list[float]] = {"warm": [], "cold": []}
        memory: list[float] = []
        for _ in range(args.rounds):
            for kind in ("warm", "cold"):
                extra = {} if kind == "warm" else {"NBSEAL_WARM_MB": "0"}
                km, kc = _open(path, {**env, **extra})
                try:
                    rows = _wait_warm(kc, {"a", "b", "c"} if kind == "warm" else {"a"})
                    if kind == "warm":
                        sizes = [
                            float(r["state"].split()[1])
                            for r in rows
                            if r["state"].startswith("warm")
                        ]
                        memory.append(sum(sizes))
                    seconds, text = _first_output(kc, CELLS[1])
                    assert text.strip().splitlines()[-1] == "1.17.0", text
                    times[kind].append(seconds)
                finally:
                    kc.stop_channels()
                    km.shutdown_kernel(now=True)
        warm, cold = statistics.median(times["warm"]), statistics.median(times["cold"])
        print(f"switch to stored environment b, first output (median of {args.rounds}):")
        print(
            f"  warm: {1000 * warm:8.1f} ms   cold (NBSEAL_WARM_MB=0): {1000 * cold:8.1f} ms"
            f"   ratio {warm / cold:.2f}x"
        )
        print(
            f"  three warm kernels' resident memory: median {statistics.median(memory):.0f} MB"
            f" (max {max(memory):.0f} MB)"
        )
    finally:
        remove_tree(work)  # the store's trees are read-only


if __name__ == "__main__":
    main()
