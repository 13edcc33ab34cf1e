"""The three figures of issue 16 for one corpus notebook, the plain way or nbseal's.

- **environment**: the user's install step succeeded. Plain: ``pip install -r``
  the project's requirements file (when it has one pip can read), then
  ``pip install ipykernel``, in a fresh ``python -m venv``. nbseal: ``nbseal
  adopt`` exited 0 and ``nbseal verify`` built the environment (no problem
  reported).
- **runs**: every cell ran, and none raised an exception that the stored
  notebook does not show in that cell (a stored ``ZeroDivisionError`` that
  comes back is the notebook working as its author meant).
- **reproduced**: among the code cells whose stored outputs hold text (what
  ``nbseal verify`` compares by default: streams, errors, every non-image MIME
  type, after its default sanitisers), those that reproduce. Plain: the fresh
  outputs compare equal with nbseal's own ``normalise_outputs`` and
  ``diff_outputs`` (nbval's cell markers are not read; a stored error raised
  again the same way compares equal). nbseal: ``nbseal verify`` says
  ``reproduced`` for that cell (it reads the markers, and today counts any
  raise without NBVAL_RAISES_EXCEPTION as an error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nbseal.compare import DEFAULT_SANITIZERS, diff_outputs, normalise_outputs
from tests.corpus.corpus import Entry, SdistCache, read, text_cells

__all__ = [
    "Figures",
    "adopt_available",
    "count_plain",
    "count_verified",
    "measure_nbseal",
    "measure_plain",
]

PIP_TIMEOUT = 1800.0  # an sdist that compiles can take this long; then it counts as failed


@dataclass
class Figures:
    slug: str
    environment: bool = False
    runs: bool = False
    text_cells: int = 0
    reproduced: int = 0
    seconds: float = 0.0
    adopt_seconds: float = 0.0  # nbseal adopt alone (nbseal mode)
    note: str = ""  # the first thing that went wrong, one line
    differing: list[int] = field(default_factory=list)  # text cells that did not reproduce

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _tail(text: str, lines: int = 1) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[:300]


def _stored_errors(cell: Any) -> set[str]:
    return {
        str(o.get("ename", "")) for o in cell.get("outputs", []) if o.get("output_type") == "error"
    }


def _unexpected_raise(stored: Any, cell_index: int, ename: str) -> bool:
    """Whether cell ``cell_index`` (1-based) raised ``ename`` where the stored notebook did not."""
    return ename not in _stored_errors(stored.cells[cell_index - 1])


def _pip(python: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=PIP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"pip ran over {PIP_TIMEOUT:.0f} s")


def measure_plain(
    entry: Entry,
    cache: SdistCache,
    workdir: Path,
    *,
    pip_cache: Path,
    cell_timeout: float,
    needs: bool = False,
) -> Figures:
    """A fresh venv, ``pip install -r`` its requirements and ipykernel, nbclient where it lies.

    With ``needs``, what the manifest says the notebook needs is installed instead of its
    requirements file (today's releases): what a careful reader of the notebook gets.
    """
    figures = Figures(entry.slug)
    started = time.monotonic()
    folder = workdir / "project"
    notebook = cache.materialise(entry, folder)
    stored = read(notebook)
    figures.text_cells = len(text_cells(stored))
    venv = workdir / "venv"
    env = dict(os.environ, PIP_CACHE_DIR=str(pip_cache))
    env.pop("PYTHONPATH", None)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        python = venv / "bin" / "python"
        requirements = None if needs else entry.requirements_in(folder)
        if needs and entry.needs:
            proc = _pip(python, list(entry.needs), env)
            if proc.returncode != 0:
                figures.note = f"pip install {' '.join(entry.needs)}: {_tail(proc.stderr)}"
                return figures
        if requirements is not None and requirements.suffix == ".txt":
            proc = _pip(python, ["-r", str(requirements)], env)
            if proc.returncode != 0:
                figures.note = f"pip install -r {entry.requirements}: {_tail(proc.stderr)}"
                return figures
        elif requirements is not None:
            figures.note = f"{entry.requirements} is not a pip requirements file; "
        proc = _pip(python, ["ipykernel"], env)
        if proc.returncode != 0:
            figures.note += f"pip install ipykernel: {_tail(proc.stderr)}"
            return figures
        figures.environment = True
        fresh, problem = _execute_plain(notebook, python, workdir / "kernels", cell_timeout)
    finally:
        figures.seconds = round(time.monotonic() - started, 1)
    count_plain(figures, stored, fresh, problem)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def count_plain(figures: Figures, stored: Any, fresh: Any, problem: str) -> None:
    """Fill ``figures`` from a plain run: ``fresh`` is ``stored`` executed anew."""
    expected = text_cells(stored)
    figures.text_cells = len(expected)
    raised = [
        f"cell {index} raised {output.get('ename')}: {output.get('evalue')}"[:300]
        for index, cell in enumerate(fresh.cells, start=1)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
        and _unexpected_raise(stored, index, str(output.get("ename", "")))
    ]
    figures.runs = problem == "" and not raised
    figures.note += problem or (raised[0] if raised else "")
    for index, outputs in expected.items():
        fresh_outputs = list(fresh.cells[index - 1].get("outputs", []))
        if diff_outputs(outputs, normalise_outputs(fresh_outputs, DEFAULT_SANITIZERS)):
            figures.differing.append(index)
        else:
            figures.reproduced += 1


def _execute_plain(
    notebook: Path, python: Path, kernels: Path, cell_timeout: float
) -> tuple[Any, str]:
    """Run ``notebook`` with the venv's ipykernel through nbclient; (executed notebook, problem)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--prefix", str(kernels), "--name", "corpus"],
        check=True,
        capture_output=True,
    )
    specs = KernelSpecManager(kernel_dirs=[str(kernels / "share" / "jupyter" / "kernels")])
    manager = KernelManager(kernel_name="corpus", kernel_spec_manager=specs)
    nb = read(notebook)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
    client = NotebookClient(
        nb,
        km=manager,
        timeout=int(cell_timeout),
        allow_errors=True,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of nbseal's
    try:
        # The kernel's own warnings (TCP without encryption...) are no output of the notebook.
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except Exception as exc:  # a cell over its time, a kernel that died: the run ends there
        return nb, f"{type(exc).__name__}: {_tail(str(exc))}"
    finally:
        if manager.has_kernel:  # nbclient shuts down only the kernels it started itself
            manager.shutdown_kernel(now=True)
    return nb, ""


def _nbseal(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "nbseal", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(list(args), 124, "", f"no answer in {exc.timeout} s")


def adopt_available(env: dict[str, str] | None = None) -> bool:
    """Whether this nbseal has the ``adopt`` command (``nbseal adopt --help`` exits 0)."""
    return _nbseal("adopt", "--help", env=env or dict(os.environ), timeout=120).returncode == 0


def _matching_cells(original: Any, adopted: Any) -> dict[int, int]:
    """Original cell index -> adopted cell index (1-based), matching sources in order.

    ``nbseal adopt`` adds a first cell; the original cells follow unchanged.
    """
    sources = [str(cell.get("source", "")) for cell in adopted.cells]
    mapping: dict[int, int] = {}
    position = 0
    for index, cell in enumerate(original.cells, start=1):
        source = str(cell.get("source", ""))
        for candidate in range(position, len(sources)):
            if sources[candidate] == source or sources[candidate].endswith("\n" + source):
                mapping[index] = candidate + 1
                position = candidate + 1
                break
    return mapping


def measure_nbseal(
    entry: Entry, cache: SdistCache, workdir: Path, *, env: dict[str, str], cell_timeout: float
) -> tuple[Figures, dict[str, Any]]:
    """``nbseal adopt NB`` then ``nbseal verify NB --json``, as a user would; (figures, report)."""
    figures = Figures(entry.slug)
    started = time.monotonic()
    notebook = cache.materialise(entry, workdir / "project")
    original = read(notebook)
    expected = text_cells(original)
    figures.text_cells = len(expected)
    report: dict[str, Any] = {}
    try:
        adopting = time.monotonic()
        adopt = _nbseal("adopt", str(notebook), env=env, timeout=PIP_TIMEOUT)
        figures.adopt_seconds = round(time.monotonic() - adopting, 1)
        report["adopt"] = {"returncode": adopt.returncode, "stderr": adopt.stderr[-4000:]}
        if adopt.returncode != 0:
            figures.note = f"nbseal adopt exited {adopt.returncode}: {_tail(adopt.stderr)}"
            return figures, report
        verify = _nbseal(
            "verify", str(notebook), "--json", "--timeout", str(cell_timeout),
            env=env, timeout=PIP_TIMEOUT,
        )  # fmt: skip
        try:
            (result,) = json.loads(verify.stdout)
        except ValueError:
            figures.note = f"nbseal verify exited {verify.returncode}: {_tail(verify.stderr)}"
            report["verify"] = {"returncode": verify.returncode, "stderr": verify.stderr[-4000:]}
            return figures, report
        report["verify"] = result
    finally:
        figures.seconds = round(time.monotonic() - started, 1)
    count_verified(figures, original, read(notebook), result)
    return figures, report


def count_verified(figures: Figures, original: Any, adopted: Any, result: dict[str, Any]) -> None:
    """Fill ``figures`` from one ``nbseal verify --json`` result of the adopted notebook."""
    figures.text_cells = len(expected := text_cells(original))
    if result.get("problem"):
        figures.note = _tail(str(result["problem"]), 2)
        return
    figures.environment = True
    mapping = _matching_cells(original, adopted)
    status = {cell["cell"]: cell for cell in result.get("cells", [])}
    raised = []
    for index in range(1, len(original.cells) + 1):
        verdict = status.get(mapping.get(index, -1))
        if verdict is not None and verdict["status"] == "error":
            ename = str(verdict.get("note", "")).split(":", 1)[0]
            if _unexpected_raise(original, index, ename):
                raised.append(f"cell {index}: {verdict.get('note', '')}"[:300])
    figures.runs = not raised
    figures.note = raised[0] if raised else ""
    for index in expected:
        verdict = status.get(mapping.get(index, -1))
        if verdict is not None and verdict["status"] == "reproduced":
            figures.reproduced += 1
        else:
            figures.differing.append(index)
