"""Rebuilding a stored lock with a warm uv cache, against raw uv offline (issue 17, item 5).

The default environment's lock (30 packages, ipykernel) is resolved once into
a private nbseal cache and a private uv cache (both removed afterwards). Each
side then builds once, untimed, to warm uv's cache. Then, alternately (order
swapped every round), two rebuilds are timed from start to a venv ready:

- nbseal: ``EnvironmentStore(empty root).ensure(lock)``, as a cleared store or
  another machine rebuilds a notebook's stored lock (``uv venv``, ``uv pip
  sync pylock.toml`` in the build sandbox, kernelspecs, manifest, read-only
  tree, rename);
- raw uv: ``uv venv`` + ``uv pip sync --offline --require-hashes`` of a
  requirements file with the same pins (``NAME==VERSION ; MARKER
  --hash=sha256:...`` for every file of the lock), into one fixed folder.

Beside the times, the growth of uv's caches (bytes, files) over each rebuild.
Target: nbseal / raw ≤ 1.1x, and uv's cache grows by 0 bytes. For scale, one
install of the pylock.toml as uv wrote it (no index named, as nbseal did
before) is run last.

    python bench/bench_rebuild.py [--runs 9]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def requirements_txt(pylock: str) -> str:
    """The pins of ``pylock`` as requirements with hashes: every file of each package."""
    from nbseal._toml import tomllib

    lines = []
    for package in tomllib.loads(pylock)["packages"]:
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        marker = f" ; {package['marker']}" if package.get("marker") else ""
        hashes = " ".join(f"--hash=sha256:{f['hashes']['sha256']}" for f in files)
        lines.append(f"{package['name']}=={package['version']}{marker} {hashes}")
    return "\n".join(lines) + "\n"


def cache_size(caches: list[Path]) -> tuple[int, int]:
    """Bytes (apparent sizes) and files in uv's caches."""
    size = count = 0
    for cache in caches:
        for dirpath, _, filenames in os.walk(cache):
            for name in filenames:
                size += (Path(dirpath) / name).lstat().st_size
                count += 1
    return size, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="rebuilds of each kind")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-rebuild-"))
    # Before any nbseal module is imported (they are imported below).
    os.environ["NBSEAL_CACHE_DIR"] = str(work / "cache")
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
    try:
        run(args.runs, work)
    finally:
        from nbseal.fsutil import remove_tree

        remove_tree(work)


def run(runs: int, work: Path) -> None:
    from nbseal import uv
    from nbseal.backends import backend_for
    from nbseal.environments import resolve
    from nbseal.plan import default_environment, host_python
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"private nbseal and uv caches under {work}; {os.cpu_count()} CPUs, load {load}")
    lock = asyncio.run(resolve(default_environment(), EnvironmentStore(), Progress("default")))
    python = host_python()
    uv_bin = uv.uv_binary()
    version = subprocess.run([uv_bin, "--version"], capture_output=True, text=True, check=True)
    print(f"lock {lock.key[:12]}: {len(lock.packages())} packages, {version.stdout.strip()}")
    # nbseal's sealed steps use their own cache when run by root (see nbseal.uv.uv_cache_dir).
    caches = sorted({Path(os.environ["UV_CACHE_DIR"]), uv.uv_cache_dir()})
    print(f"uv caches measured: {', '.join(str(c) for c in caches)}")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"UV_NO_PROGRESS": "1"}
    requirements = work / "requirements.txt"
    requirements.write_text(requirements_txt(lock.pylock))
    pylock = work / "pylock.toml"
    pylock.write_text(lock.pylock)
    raw_dir = work / "raw-env"

    def raw(offline: bool = True, source: Path = requirements) -> None:
        flags = ["--preview-features", "pylock"] if source == pylock else []
        sync = [uv_bin, "pip", "sync", str(source), "--python", str(raw_dir / "bin" / "python")]
        sync += [*flags, "--compile-bytecode", "--require-hashes"]
        venv = [uv_bin, "venv", "--relocatable", "--no-project", "--python", python]
        subprocess.run([*venv, str(raw_dir)], env=env, check=True, capture_output=True)
        subprocess.run(
            sync + (["--offline"] if offline else []), env=env, check=True, capture_output=True
        )

    def nbseal() -> None:
        store = EnvironmentStore(work / "store")
        built = asyncio.run(store.ensure(lock, backend_for("uv"), Progress("bench")))
        assert not built.reused

    def clean() -> None:
        shutil.rmtree(raw_dir, ignore_errors=True)
        from nbseal.fsutil import remove_tree

        remove_tree(work / "store")

    def timed(build: Callable[[], None]) -> tuple[float, int, int]:
        before = cache_size(caches)
        started = time.perf_counter()
        build()
        seconds = time.perf_counter() - started
        after = cache_size(caches)
        clean()
        return seconds, after[0] - before[0], after[1] - before[1]

    shown = f"{uv_bin} pip sync requirements.txt --python DIR/bin/python --compile-bytecode"
    print(f"raw uv:  uv venv --relocatable --no-project --python {python} DIR")
    print(f"         {shown} --require-hashes --offline")
    print("nbseal:  EnvironmentStore(empty root).ensure(lock, backend_for('uv'), progress)")
    raw(offline=False)  # the index pages and wheels into the cache, untimed
    clean()
    nbseal()
    clean()
    print("one untimed build of each to warm uv's cache, then alternating runs")
    results: dict[str, list[tuple[float, int, int]]] = {"raw": [], "nbseal": []}
    for i in range(runs):
        order = ("raw", "nbseal") if i % 2 == 0 else ("nbseal", "raw")
        for kind in order:
            results[kind].append(timed(raw if kind == "raw" else nbseal))
    medians = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    paired = statistics.median(
        n[0] / r[0] for r, n in zip(results["raw"], results["nbseal"], strict=True)
    )
    print(f"median of {runs} rebuilds each (warm uv cache)")
    for kind, label in (("raw", "raw uv, offline"), ("nbseal", "nbseal, sealed")):
        grown = sum(r[1] for r in results[kind])
        files = sum(r[2] for r in results[kind])
        times = [round(1000 * r[0]) for r in results[kind]]
        print(
            f"    {label:<16}{1000 * medians[kind]:8.0f} ms   uv caches grew {grown:+d} bytes,"
            f" {files:+d} files over all {runs} rebuilds   {times}"
        )
    ratio = medians["nbseal"] / medians["raw"]
    print(f"    median of the per-round ratios: {paired:.2f}x")
    seconds, grown, files = timed(lambda: raw(offline=False, source=pylock))
    print(
        f"for scale: uv pip sync of the pylock.toml as uv wrote it (no index named, nbseal"
        f" before): {1000 * seconds:.0f} ms, uv's cache grew {grown:+d} bytes, {files:+d} files"
    )
    verdict = "meets" if ratio <= 1.1 else "MISSES"
    print(f"rebuild ratio {ratio:.2f}x ({verdict} the 1.1x target)")


if __name__ == "__main__":
    main()
