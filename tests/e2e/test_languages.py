"""Many languages in one notebook through ``nbseal run``: each cell answered by its own kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.e2e.test_cli import nbseal, notebook

pytestmark = pytest.mark.usefixtures("default_env")

PIN = "#seal pin 2025-06-01\n"


def texts(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or returned, without nbseal's own summary lines."""
    parts = []
    for output in cell.outputs:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "execute_result":
            parts.append(output["data"]["text/plain"] + "\n")
    return "".join(parts)


def test_python_bash_and_scheme_in_one_notebook_keep_their_state(tmp_path: Path) -> None:
    path = tmp_path / "three.ipynb"
    nbformat.write(
        notebook(
            PIN + "#seal env py <- numpy\nimport numpy as np\nx = np.arange(4)\n"
            "print(type(x).__module__, x.sum())",
            "#seal env sh <- bash_kernel kernel=bash\nCOUNT=41\necho bash ${BASH_VERSINFO[0]}",
            "#seal env scm <- calysto_scheme kernel=calysto_scheme\n(define n 6)\n(* n 7)",
            "#seal env py\nprint(int(x.sum()) * 2)",
            "#seal env sh\necho $((COUNT + 1))",
            "#seal env scm\n(+ n 1)",
        ),
        path,
    )
    out = tmp_path / "out.ipynb"
    run = nbseal("run", str(path), "-o", str(out))
    assert run.returncode == 0, run.stderr
    cells = nbformat.read(out, as_version=4).cells
    assert texts(cells[0]) == "numpy 6\n"  # numpy's own type, from Python
    assert texts(cells[1]).startswith("bash ")  # BASH_VERSINFO exists only in bash
    assert texts(cells[1]).strip().split()[1].isdigit()
    assert texts(cells[2]) == "42\n"  # Scheme's (* n 7)
    # Back and forth: every kernel kept its variables.
    assert texts(cells[3]) == "12\n"
    assert texts(cells[4]) == "42\n"
    assert texts(cells[5]) == "7\n"


def test_a_kernel_whose_program_is_missing_says_so(tmp_path: Path) -> None:
    """octave_kernel from PyPI without Octave: the kernel dies at start, and the cell says why."""
    path = tmp_path / "octave.ipynb"
    nbformat.write(notebook(PIN + "#seal env oct <- octave_kernel kernel=octave\ndisp(1)"), path)
    run = nbseal("run", str(path), "-o", str(tmp_path / "out.ipynb"))
    assert run.returncode == 1
    assert "KernelStartError" in run.stderr
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    (error,) = [o for o in out.cells[0].outputs if o["output_type"] == "error"]
    assert error["ename"] == "KernelStartError"
    assert "fails at start" in error["evalue"]
    # The kernel's own words come along: what is missing.
    assert "octave not found" in "\n".join(error["traceback"])
