"""Warm start of the nbseal kernel, sealed (the default) against ``--no-sandbox``.

The same proxy kernel, started the way Jupyter starts it (``python -m
nbseal.kernel -f {connection_file}``, with ``--no-sandbox`` appended for the
unsealed one, as the ``nbseal-unsealed`` kernelspec does), timed from
``start_kernel`` to the ``execute_result`` of ``1+1``, as bench_envs.py (c)
times it. The default environment is built into a private, empty nbseal cache
first (untimed; ``NBSEAL_CACHE_DIR`` is set before any nbseal module is
imported); one untimed warm-up of each, then alternating runs with the order
swapped every round. The ratio isolates the sandbox (bwrap) on the start path.
Target: sealed / unsealed at most 1.05x (issue 13; it was 1.1x before).

    python bench/bench_sealed_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from jupyter_client.manager import KernelManager

KINDS = {"unsealed": "nbseal-unsealed", "sealed": "nbseal"}  # kind -> kernel name


def start_to_result(kind: str, log: Path) -> tuple[float, float]:
    """Seconds from start_kernel to ready (kernel_info reply) and to 1+1's execute_result."""
    from bench_envs import time_first_result  # bench/ is on sys.path when run as a script
    from nbseal.runner.manager import InMemoryKernelSpecManager

    km = KernelManager(kernel_name=KINDS[kind], kernel_spec_manager=InMemoryKernelSpecManager())
    return time_first_result(km, log, kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="starts of each kind")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-sealed-"))
    # Before any nbseal module is imported (they are imported below).
    os.environ["NBSEAL_CACHE_DIR"] = str(work / "cache")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    from nbseal.environments import realize
    from nbseal.fsutil import remove_tree
    from nbseal.kernel.kernelspec import kernelspec_dict
    from nbseal.plan import default_environment
    from nbseal.progress import Progress
    from nbseal.sandbox import find_bwrap
    from nbseal.store import EnvironmentStore

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"private nbseal cache under {work}; {os.cpu_count()} CPUs, load average {load}")
    try:
        built = asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
        print(f"default environment {built.key[:12]} built into the private store (untimed)")
        for kind, name in KINDS.items():
            argv = kernelspec_dict(sandbox=kind == "sealed")["argv"]
            print(f"    {kind:<9} ({name}): {' '.join(argv)}")
        print(f"    bwrap: {find_bwrap()}")
        print("one untimed warm-up of each, then alternating runs (order swapped every round)")
        log = work / "kernels-stderr.log"
        for kind in KINDS:
            start_to_result(kind, log)
        times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
        for i in range(args.runs):
            order = list(KINDS) if i % 2 == 0 else list(reversed(KINDS))
            for kind in order:
                times[kind].append(start_to_result(kind, log))
        print(f"median of {args.runs} runs each")
        print(f"{'metric':<28}{'unsealed':>10}{'sealed':>10}{'ratio':>8}{'overhead':>11}")
        for index, label in ((0, "start -> ready"), (1, "start -> first result")):
            base = 1000 * statistics.median(t[index] for t in times["unsealed"])
            ours = 1000 * statistics.median(t[index] for t in times["sealed"])
            print(
                f"{label:<28}{base:>10.1f}{ours:>10.1f}{ours / base:>7.2f}x{ours - base:>+10.1f} ms"
            )
        paired = statistics.median(
            s[1] / u[1] for u, s in zip(times["unsealed"], times["sealed"], strict=True)
        )
        spread = {k: [round(1000 * t[1]) for t in v] for k, v in times.items()}
        print(f"    all first-result times (ms): {json.dumps(spread)}")
        print(f"    median of the per-round ratios: {paired:.2f}x")
        base = statistics.median(t[1] for t in times["unsealed"])
        ours = statistics.median(t[1] for t in times["sealed"])
        verdict = "meets" if ours / base <= 1.05 else "MISSES"
        print(f"sealed / unsealed warm start {ours / base:.2f}x ({verdict} the 1.05x target)")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"    load average after: {load}")
    finally:
        remove_tree(work / "cache" / "envs")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
