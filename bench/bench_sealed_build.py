"""Installing a lock in the build sandbox against the same install unsealed.

The default environment's lock (30 packages, ipykernel 7.4.0) is resolved
once into a private nbseal cache and a private uv cache, and installed once
untimed (warming uv's cache, as a second environment of a user would find
it). Then, alternately (order swapped every round), into fresh venvs made by
``uv venv``, the same ``uv pip sync`` command line runs twice: as nbseal runs
it, in the build sandbox (bwrap, user namespace, no capabilities, seccomp,
tmpfs HOME, the venv and uv's cache writable), and plain, with no sandbox.
Only the install is timed. Target (issue 13): sealed / unsealed ≤ 1.1x.

    python bench/bench_sealed_build.py [--runs 9]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="installs of each kind")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-build-"))
    # Before any nbseal module is imported (they are imported below).
    os.environ["NBSEAL_CACHE_DIR"] = str(work / "cache")
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    from nbseal import uv
    from nbseal.environments import resolve
    from nbseal.plan import default_environment, host_python
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"private nbseal and uv caches under {work}; {os.cpu_count()} CPUs, load {load}")

    async def install(index: int, pylock: Path, python: str, sealed: bool) -> float:
        venv = work / f"venv-{index}-{'sealed' if sealed else 'plain'}"
        await uv.create_venv(venv, python=python)
        started = time.perf_counter()
        seal = uv.sync_seal(venv, pylock) if sealed else None
        code, _, err = await uv._run(uv.sync_args(venv, pylock), None, seal)
        seconds = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"uv pip sync failed:\n{err}")
        shutil.rmtree(venv)
        return seconds

    async def run() -> None:
        lock = await resolve(default_environment(), EnvironmentStore(), Progress("default"))
        pylock = work / "pylock.toml"
        pylock.write_text(lock.pylock)
        python = host_python()  # as the uv backend picks it for a lock of this Python
        print(f"lock: {len(lock.packages())} packages, Python {lock.python} ({python})")
        await install(0, pylock, python, sealed=False)  # warms uv's cache, untimed
        print("one untimed install to warm uv's cache, then alternating runs")
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.runs):
            order = [True, False] if i % 2 == 0 else [False, True]
            for sealed in order:
                times[sealed].append(await install(i + 1, pylock, python, sealed))
        plain = statistics.median(times[False])
        sealed_ = statistics.median(times[True])
        paired = statistics.median(s / p for s, p in zip(times[True], times[False], strict=True))
        print(f"median of {args.runs} installs each")
        print(f"    plain  uv pip sync: {1000 * plain:8.0f} ms  {_ms(times[False])}")
        print(f"    sealed uv pip sync: {1000 * sealed_:8.0f} ms  {_ms(times[True])}")
        print(f"    median of the per-round ratios: {paired:.2f}x")
        verdict = "meets" if sealed_ / plain <= 1.1 else "MISSES"
        print(
            f"sealed / plain install {sealed_ / plain:.2f}x "
            f"(+{1000 * (sealed_ - plain):.0f} ms; {verdict} the 1.1x target)"
        )

    try:
        asyncio.run(run())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"    load average after: {load}")


def _ms(values: list[float]) -> str:
    return "[" + ", ".join(f"{1000 * v:.0f}" for v in values) + "]"


if __name__ == "__main__":
    main()
