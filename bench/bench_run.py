"""`nbseal run` of a small pinned notebook against `juv exec` of the same notebook.

The notebook opens with a PEP 723 block (numpy, `exclude-newer` as the pin),
the form juv writes and nbseal reads as the notebook's default environment,
then three code cells. Both tools get it warm: nbseal's environment locked
and stored, uv's cache holding juv's script environment (both in one
temporary cache). Rounds alternate the two commands, timed as whole
processes:

- ``nbseal run NB -o OUT``: starts the nbseal kernel and the environment's
  kernel in the sandbox, runs the cells, writes every output back;
- ``juv exec NB`` (juv from PyPI, in a venv of its own): jupytext turns the
  notebook into a script and ``uv run`` runs it, unsandboxed; the outputs
  go to the terminal and the notebook is left as it was.

With ``--before SRC`` (the ``src`` folder of another checkout, e.g. a git
worktree of an older commit) that checkout's ``nbseal run`` joins the rounds,
same store, same notebook. With ``--timeline`` one more ``nbseal run
--verbose`` prints where its time goes.

    python bench/bench_run.py [--rounds 10] [--before /path/to/old/src] [--timeline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import as_installed
from nbseal.fsutil import remove_tree

JUV = "juv==0.5.0"
HEADER = """# /// script
# requires-python = ">=3.11"
# dependencies = ["numpy==2.2.6"]
#
# [tool.uv]
# exclude-newer = "2025-06-01T00:00:00Z"
# ///"""
CELLS = [
    HEADER,
    "import numpy as np\nx = np.arange(10)",
    "print(x.sum())",
    "x.mean()",
]


def _notebook(path: Path) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c}
        for c in CELLS
    ]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    path.write_text(
        json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})
    )


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--timeline", action="store_true", help="print one run's timeline")
    parser.add_argument("--before", type=Path, help="another checkout's src folder to compare")
    args = parser.parse_args()
    print(as_installed(*([args.before] if args.before else [])))

    top = Path(tempfile.mkdtemp(prefix="nbseal-bench-run-"))
    try:
        env = {
            **os.environ,
            "NBSEAL_CACHE_DIR": str(top / "cache"),
            "UV_CACHE_DIR": str(top / "uv-cache"),
        }
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
        juv_venv = top / "juv"
        subprocess.run([uv, "venv", "-q", str(juv_venv)], env=env, check=True)
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(juv_venv / "bin" / "python"), JUV],
            env=env,
            check=True,
        )
        notebook = top / "analysis.ipynb"
        _notebook(notebook)
        nbseal = [sys.executable, "-m", "nbseal"]
        juv = [str(juv_venv / "bin" / "juv"), "exec", "--quiet", str(notebook)]
        run = [*nbseal, "run", str(notebook), "-o", str(top / "out.ipynb")]
        # Warm both: nbseal's lock and store entry, juv's cached script environment.
        _timed([*nbseal, "lock", str(notebook)], env, top)
        _timed(run, env, top)
        _timed(juv, env, top)
        out = json.loads((top / "out.ipynb").read_text())
        outputs = out["cells"][2]["outputs"]
        texts = ["".join(o.get("text") or o.get("data", {}).get("text/plain", "")) for o in outputs]
        assert texts == ["45\n"], texts  # nbseal wrote the outputs back

        commands = {"nbseal run": (run, env), "juv exec": (juv, env)}
        if args.before is not None:
            before_env = {**env, "PYTHONPATH": str(args.before.resolve())}
            commands["before"] = (run, before_env)
            _timed(run, before_env, top)  # its own first run: nothing is rebuilt
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (argv, with_env) in commands.items():
                times[name].append(_timed(argv, with_env, top))
        base = statistics.median(times["juv exec"])
        print(f"{args.rounds} rounds, alternating; median (min-max) of whole processes")
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"  {name:<11} {median * 1000:7.0f} ms ({min(values) * 1000:.0f}-"
                f"{max(values) * 1000:.0f})  {median / base:.2f}x juv exec"
            )
        if args.timeline:
            done = subprocess.run([*run, "--verbose"], env=env, capture_output=True, text=True)
            print(done.stderr.split("nbseal run: timeline", 1)[-1])
    finally:
        remove_tree(top)


if __name__ == "__main__":
    main()
