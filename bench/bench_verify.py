"""Verification cost: ``nbseal verify`` against plain nbconvert, and ``-j 2`` against ``-j 1``.

Needs nbconvert (``.venv/bin/pip install nbconvert``); it is not a dependency of
nbseal. Everything runs against a fresh, private nbseal cache
(``NBSEAL_CACHE_DIR`` is set to an empty temporary directory before nbseal
reads it) and a private ``JUPYTER_RUNTIME_DIR``; uv's own cache is used as it is.
Every notebook is a default-environment notebook (no ``#seal`` line), five
plain Python cells, locked with ``nbseal lock`` and run once with ``nbseal
run`` so it holds outputs to compare against (both untimed; this also builds
the default environment into the store). Each command is timed as a
subprocess, wall clock, from spawn to exit.

(f) ``nbseal verify NB`` of one such notebook against ``jupyter nbconvert --to
    notebook --execute NB`` of the same notebook, in the same venv, with the
    ipykernel of the store's default environment (a kernelspec for that
    python written into a private ``JUPYTER_PATH``, selected with
    ``--ExecutePreprocessor.kernel_name``; unsealed, no proxy). Cells: imports
    and a print, a sum over 100,000 squares, a sort, ``json.dumps``, and
    ``math.factorial`` as an execute_result. Target: verify/nbconvert under 1.3x.
    Then, for where the time goes, the same two in this process (no interpreter
    start, no imports): ``verify_notebook`` against nbclient (what nbconvert's
    ExecutePreprocessor runs) with the direct kernel, split after the first cell
    (which carries the end of the kernel start) and after the last.
(g) ``nbseal verify -j 2`` of eight notebooks against ``-j 1`` of the same
    eight. Each notebook has the cells of (f), except that one cell also calls
    ``time.sleep(0.5)`` (waiting, not CPU, so that running two at once can
    show) and another prints the notebook's number. Target: under 0.65x.

One untimed warm-up of each command, then alternating runs with the order
swapped every round; medians.

``import nbformat`` (which the verify process, nbconvert and every nbseal proxy
kernel pay) costs about 100 ms, but about 2 s when ``rfc3987_syntax`` is
installed (jsonschema imports it and it compiles a Lark grammar at import;
python-jsonschema/jsonschema#1428), as it is with jupyterlab in the venv.
``--hide-rfc3987-syntax`` puts a stub that raises ImportError first on
``PYTHONPATH`` for every command, to measure as if it were not installed.

    python bench/bench_verify.py [--only f g] [--runs 5] [--parallel-runs 5] [--notebooks 8]
                                 [--hide-rfc3987-syntax]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nbformat

from nbseal.fsutil import remove_tree
from nbseal.locking import check_locks
from nbseal.notebook import metadata_locks, read_notebook
from nbseal.runner import RunEvent
from nbseal.store import EnvironmentStore
from nbseal.verify import VerifyOptions, verify_notebook

BIN = Path(sys.executable).parent
NBSEAL = str(BIN / "nbseal")
JUPYTER = str(BIN / "jupyter")
KERNEL_NAME = "nbseal-bench-default"

CELLS_F = (
    "import platform, sys\nprint('hello from', platform.python_implementation())",
    "total = sum(i * i for i in range(100_000))\nprint(total)",
    "words = ['delta', 'alpha', 'echo', 'charlie', 'bravo']\nprint(sorted(words))",
    "import json\nprint(json.dumps({'b': [1, 2, 3], 'a': total % 97}, sort_keys=True))",
    "import math\nmath.factorial(20)",
)


def cells_g(number: int) -> tuple[str, ...]:
    return (
        CELLS_F[0],
        f"print('notebook {number}')\n" + CELLS_F[1],
        "import time\ntime.sleep(0.5)\n" + CELLS_F[2],
        CELLS_F[3],
        CELLS_F[4],
    )


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _row(name: str, base: float, ours: float) -> str:
    return f"{name:<30}{base:>10.0f}{ours:>10.0f}{ours / base:>7.2f}x{ours - base:>+10.0f} ms"


def _header(base: str, ours: str) -> str:
    return f"{'metric':<30}{base:>10}{ours:>10}{'ratio':>8}{'overhead':>11}"


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of ``argv`` from spawn to exit, and its stdout; raises if it failed."""
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "\n".join(f"      {line}" for line in proc.stderr.strip().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{tail}")
    return seconds, proc.stdout


def write_notebook(path: Path, sources: Sequence[str]) -> None:
    cells = [nbformat.v4.new_code_cell(s) for s in sources]  # type: ignore[no-untyped-call]
    notebook = nbformat.v4.new_notebook(cells=cells)  # type: ignore[no-untyped-call]
    nbformat.write(notebook, str(path))  # type: ignore[no-untyped-call]


def prepare(paths: Sequence[Path]) -> None:
    """``nbseal lock`` all, then ``nbseal run`` each in place (untimed)."""
    started = time.perf_counter()
    subprocess.run([NBSEAL, "lock", *map(str, paths)], check=True, capture_output=True)
    locked = time.perf_counter() - started
    for path in paths:
        subprocess.run([NBSEAL, "run", str(path)], check=True, capture_output=True)
    ran = time.perf_counter() - started - locked
    print(
        f"    prepared {len(paths)} notebook(s): nbseal lock {locked:.1f} s, "
        f"nbseal run {ran:.1f} s (untimed)"
    )


def _streams(notebook: Any) -> list[str]:
    texts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out["text"])
            elif out.get("output_type") == "execute_result":
                texts.append(out["data"]["text/plain"])
            elif out.get("output_type") == "error":
                texts.append(f"ERROR {out['ename']}: {out['evalue']}")
    return texts


def _verified(stdout: str, count: int) -> list[float]:
    """Check ``nbseal verify --json`` verified every notebook; their in-process seconds."""
    reports = json.loads(stdout)
    assert len(reports) == count, reports
    bad = [r for r in reports if not r["ok"] or r["counts"]["reproduced"] != 5]
    assert not bad, json.dumps(bad, indent=1)
    return [float(r["seconds"]) for r in reports]


def _paired(times: dict[str, list[float]], base: str, ours: str) -> str:
    ratios = [o / b for b, o in zip(times[base], times[ours], strict=True)]
    return f"    median of the per-round ratios: {statistics.median(ratios):.2f}x"


def _alternate(runs: int, commands: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    for once in commands.values():
        once()  # warm-up, untimed
    times: dict[str, list[float]] = {kind: [] for kind in commands}
    kinds = list(commands)
    for i in range(runs):
        for kind in kinds if i % 2 == 0 else reversed(kinds):
            times[kind].append(commands[kind]())
    return times


# ---------------------------------------------------------------------------
# (f) verify vs nbconvert
# ---------------------------------------------------------------------------
# The proxy answers kernel_info before its pre-started sub-kernel is up, so the
# first cell carries the rest of the kernel start: split after it, not before.
PHASES = ("start -> cell 1 done", "cells 2-5", "after last cell")


def _phases_verify(path: Path) -> list[float]:
    """verify_notebook in this process: seconds to cell 1 done, of cells 2-5, after them."""
    marks: list[float] = []

    def reporter(event: RunEvent) -> None:
        if event.kind in ("cell-start", "cell-done"):
            marks.append(time.perf_counter())

    started = time.perf_counter()
    report = verify_notebook(path, VerifyOptions(), reporter)
    ended = time.perf_counter()
    assert report.ok, report.to_json()
    return [marks[1] - started, marks[-1] - marks[1], ended - marks[-1]]


def _phases_nbclient(path: Path) -> list[float]:
    """What nbconvert's ExecutePreprocessor runs (nbclient), in this process, timed alike."""
    from nbclient import NotebookClient

    notebook = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    marks: list[float] = []
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=lambda **_: marks.append(time.perf_counter()),
        on_cell_executed=lambda **_: marks.append(time.perf_counter()),
    )
    started = time.perf_counter()
    # ipykernel warns on stderr about unencrypted TCP at every start; keep it out of the table.
    with open(path.parent / "kernels-stderr.log", "ab") as stderr:
        client.execute(stderr=stderr)
    ended = time.perf_counter()
    return [marks[1] - started, marks[-1] - marks[1], ended - marks[-1]]


def breakdown(path: Path, runs: int) -> None:
    """Where the time goes, in process (no interpreter start or imports), median of runs."""
    checks = []
    for _ in range(runs):
        started = time.perf_counter()
        assert all(s.ok for s in check_locks(path))
        checks.append(time.perf_counter() - started)
    rounds: dict[str, list[list[float]]] = {"nbclient": [], "verify": []}
    for i in range(runs + 1):  # the first round is a warm-up
        for kind in ("nbclient", "verify") if i % 2 == 0 else ("verify", "nbclient"):
            phases = _phases_verify(path) if kind == "verify" else _phases_nbclient(path)
            if i:
                rounds[kind].append(phases)
    print(f"    in this process, median of {runs} (verify_notebook vs nbclient, direct kernel):")
    for index, name in enumerate(PHASES):
        base = 1000 * statistics.median(r[index] for r in rounds["nbclient"])
        ours = 1000 * statistics.median(r[index] for r in rounds["verify"])
        print(_row(f"  {name}", base, ours))
    print(
        f"    (verify's first phase includes its read + lock check, "
        f"check_locks alone: {1000 * statistics.median(checks):.0f} ms; "
        "'after last cell' is kernel shutdown, plus compare for verify)"
    )


def kernelspec_for(python: Path, jupyter_path: Path) -> None:
    spec = jupyter_path / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "nbseal default (direct)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))


def bench_nbconvert(runs: int, work: Path) -> None:
    print("\n(f) nbseal verify of one 5-cell notebook vs jupyter nbconvert --execute")
    folder = work / "f"
    folder.mkdir()
    notebook = folder / "small.ipynb"
    write_notebook(notebook, CELLS_F)
    prepare([notebook])
    stored = read_notebook(notebook)
    lock = metadata_locks(stored)["default"]
    built = EnvironmentStore().lookup(lock)
    assert built is not None, f"default environment {lock.key[:12]} not in the store"
    jupyter_path = work / "jupyter"
    kernelspec_for(built.python, jupyter_path)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = str(jupyter_path)
    out_dir = work / "nbconvert-out"
    verify = [NBSEAL, "verify", "--json", str(notebook)]
    nbconvert = [
        JUPYTER,
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        f"--ExecutePreprocessor.kernel_name={KERNEL_NAME}",
        "--output-dir",
        str(out_dir),
        str(notebook),
    ]
    print(f"    default environment {lock.key[:12]}: {built.python}")
    print(f"    nbseal:    {' '.join(verify)}")
    print(f"    nbconvert: JUPYTER_PATH={jupyter_path} {' '.join(nbconvert)}")
    print(f"               kernel {KERNEL_NAME}: {built.python} -m ipykernel_launcher -f ...")
    inside: list[float] = []

    def run_verify() -> float:
        seconds, stdout = _run(verify)
        inside.extend(_verified(stdout, 1))
        return seconds

    def run_nbconvert() -> float:
        seconds, _ = _run(nbconvert, env)
        return seconds

    times = _alternate(runs, {"nbconvert": run_nbconvert, "verify": run_verify})
    converted = nbformat.read(str(out_dir / notebook.name), as_version=4)  # type: ignore[no-untyped-call]
    same = _streams(converted) == _streams(stored)
    print(f"    nbconvert's outputs {'match' if same else 'DIFFER from'} the stored ones")
    print(f"    median of {runs} alternating runs each (order swapped every round)")
    print(_header("nbconvert", "verify"))
    base = 1000 * statistics.median(times["nbconvert"])
    ours = 1000 * statistics.median(times["verify"])
    print(_row("wall time, 5 cells", base, ours))
    fastest = [1000 * min(times[k]) for k in ("nbconvert", "verify")]
    print(_row("  fastest of the runs", fastest[0], fastest[1]))
    print(_paired(times, "nbconvert", "verify"))
    spread = {k: [round(1000 * t) for t in v] for k, v in times.items()}
    print(f"    all wall times (ms): {json.dumps(spread)}")
    # The warm-up's in-process time is the first entry; leave it out.
    within = 1000 * statistics.median(inside[1:])
    print(
        f"    verify: {within:.0f} ms inside verify_notebook (lock check, kernel start, cells, "
        f"compare; median), so {ours - within:.0f} ms of interpreter start, imports, exit"
    )
    scale = {
        "nbseal --version": [NBSEAL, "--version"],
        "jupyter nbconvert --version": [JUPYTER, "nbconvert", "--version"],
        "import nbseal.verify+runner": [
            sys.executable,
            "-c",
            "import nbseal.cli, nbseal.verify, nbseal.runner, nbseal.report",
        ],
        "import nbconvert.nbconvertapp": [sys.executable, "-c", "import nbconvert.nbconvertapp"],
        "import nbformat": [sys.executable, "-c", "import nbformat"],
    }
    shown = []
    for name, argv in scale.items():
        shown.append(f"{name} {1000 * statistics.median(_run(argv)[0] for _ in range(5)):.0f}")
    print(f"    for scale (median of 5, ms): {'; '.join(shown)}")
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    breakdown(notebook, 3)
    verdict = "meets" if ours / base < 1.3 else "MISSES"
    print(f"verify/nbconvert ratio {ours / base:.2f}x ({verdict} the 1.3x target)")


# ---------------------------------------------------------------------------
# (g) -j 2 vs -j 1
# ---------------------------------------------------------------------------
def bench_parallel(runs: int, count: int, work: Path) -> None:
    print(f"\n(g) nbseal verify -j 2 vs -j 1 of {count} notebooks (5 cells, one sleeps 0.5 s)")
    folder = work / "g"
    folder.mkdir()
    paths = [folder / f"nb{i}.ipynb" for i in range(1, count + 1)]
    for number, path in enumerate(paths, start=1):
        write_notebook(path, cells_g(number))
    prepare(paths)
    commands = {
        jobs: [NBSEAL, "verify", "--json", "-j", jobs, *map(str, paths)] for jobs in ("1", "2")
    }
    for jobs, argv in commands.items():
        print(f"    -j {jobs}: {' '.join(argv[:5])} {folder}/nb{{1..{count}}}.ipynb")
    inside: dict[str, list[float]] = {"1": [], "2": []}

    def once(jobs: str) -> float:
        seconds, stdout = _run(commands[jobs])
        inside[jobs].append(statistics.median(_verified(stdout, count)))
        return seconds

    times = _alternate(runs, {"-j 1": lambda: once("1"), "-j 2": lambda: once("2")})
    print(f"    median of {runs} alternating runs each (order swapped every round)")
    print(_header("-j 1", "-j 2"))
    base = 1000 * statistics.median(times["-j 1"])
    ours = 1000 * statistics.median(times["-j 2"])
    print(_row(f"wall time, {count} notebooks", base, ours))
    print(_row("  fastest of the runs", 1000 * min(times["-j 1"]), 1000 * min(times["-j 2"])))
    print(_paired(times, "-j 1", "-j 2"))
    spread = {k: [round(1000 * t) for t in v] for k, v in times.items()}
    print(f"    all wall times (ms): {json.dumps(spread)}")
    per = {k: 1000 * statistics.median(v[1:]) for k, v in inside.items()}
    print(
        f"    one notebook inside verify_notebook (median): {per['1']:.0f} ms at -j 1, "
        f"{per['2']:.0f} ms at -j 2 (of which 500 ms is the sleep)"
    )
    verdict = "meets" if ours / base < 0.65 else "MISSES"
    print(f"-j 2 / -j 1 ratio {ours / base:.2f}x ({verdict} the 0.65x target)")


# ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", nargs="+", choices=["f", "g"], default=["f", "g"])
    parser.add_argument("--runs", type=int, default=5, help="(f) runs of each command")
    parser.add_argument("--parallel-runs", type=int, default=5, help="(g) runs of each -j")
    parser.add_argument("--notebooks", type=int, default=8, help="(g) notebooks verified")
    parser.add_argument("--keep", action="store_true", help="keep the private directory")
    parser.add_argument(
        "--hide-rfc3987-syntax",
        action="store_true",
        help="make `import rfc3987_syntax` fail in every command (see above)",
    )
    args = parser.parse_args()
    if shutil.which("jupyter-nbconvert", path=str(BIN)) is None and "f" in args.only:
        parser.error(f"needs nbconvert: {BIN / 'pip'} install nbconvert")

    work = Path(tempfile.mkdtemp(prefix="nbseal-bench-verify-"))
    # Before nbseal reads it; the subprocesses inherit both.
    os.environ["NBSEAL_CACHE_DIR"] = str(work / "cache")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    print(f"private nbseal cache under {work}; {os.cpu_count()} CPUs, load average {_load()}")
    if args.hide_rfc3987_syntax:
        stub = work / "hide"
        stub.mkdir()
        (stub / "rfc3987_syntax.py").write_text("raise ImportError('hidden by bench_verify')\n")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(stub), os.environ.get("PYTHONPATH", "")) if p
        )
        print(f"rfc3987_syntax hidden: PYTHONPATH={os.environ['PYTHONPATH']}")
    else:
        found = importlib.util.find_spec("rfc3987_syntax") is not None
        print(f"rfc3987_syntax {'IS' if found else 'is not'} installed in this venv")
    try:
        if "f" in args.only:
            bench_nbconvert(args.runs, work)
            print(f"    load average after (f): {_load()}")
        if "g" in args.only:
            bench_parallel(args.parallel_runs, args.notebooks, work)
            print(f"    load average after (g): {_load()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            remove_tree(work / "cache" / "envs")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
