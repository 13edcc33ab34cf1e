"""Building an environment sealed, as nbseal does, against raw uv unsealed.

The default environment's lock (30 packages, ipykernel 7.4.0) is resolved
once into a private nbseal cache and a private uv cache, and installed once
untimed (warming uv's cache, as a second environment of a user would find
it). Then, alternately (order swapped every round), two builds of it are
timed from start to a venv ready at its destination: nbseal's uv backend
(``uv venv``, then ``uv pip sync`` in the build sandbox: bwrap, a user
namespace, no capabilities, seccomp, tmpfs HOME, only uv's cache writable,
then the venv moved out of it), and the same two uv commands run plainly on
the host into the destination. Target (issue 13): sealed / plain ≤ 1.1x.

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
    from nbseal.backends.uv import UvBackend
    from nbseal.environments import resolve
    from nbseal.lock import Lock
    from nbseal.plan import default_environment, host_python
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"private nbseal and uv caches under {work}; {os.cpu_count()} CPUs, load {load}")

    async def install(index: int, lock: Lock, python: str, sealed: bool) -> float:
        dest = work / f"env-{index}-{'sealed' if sealed else 'plain'}"
        started = time.perf_counter()
        if sealed:
            await UvBackend().build(lock, dest, Progress("bench"))
        else:
            await uv.create_venv(dest, python=python)
            pylock = dest / "pylock.toml"
            pylock.write_text(uv.cached_pylock(lock.pylock))  # as the backend writes it
            code, _, err = await uv._run(uv.sync_args(dest, pylock), None)
            if code != 0:
                raise SystemExit(f"uv pip sync failed:\n{err}")
        seconds = time.perf_counter() - started
        shutil.rmtree(dest)
        return seconds

    async def run() -> None:
        lock = await resolve(default_environment(), EnvironmentStore(), Progress("default"))
        python = host_python()  # as the uv backend picks it for a lock of this Python
        print(f"lock: {len(lock.packages())} packages, Python {lock.python} ({python})")
        await install(0, lock, python, sealed=False)  # warms uv's cache, untimed
        print("one untimed install to warm uv's cache, then alternating runs")
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.runs):
            order = [True, False] if i % 2 == 0 else [False, True]
            for sealed in order:
                times[sealed].append(await install(i + 1, lock, python, sealed))
        plain = statistics.median(times[False])
        sealed_ = statistics.median(times[True])
        paired = statistics.median(s / p for s, p in zip(times[True], times[False], strict=True))
        print(f"median of {args.runs} installs each")
        print(f"    raw uv, unsealed:     {1000 * plain:8.0f} ms  {_ms(times[False])}")
        print(f"    nbseal's build, sealed: {1000 * sealed_:6.0f} ms  {_ms(times[True])}")
        print(f"    median of the per-round ratios: {paired:.2f}x")
        verdict = "meets" if sealed_ / plain <= 1.1 else "MISSES"
        print(
            f"sealed build / raw uv {sealed_ / plain:.2f}x "
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
