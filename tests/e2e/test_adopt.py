"""End to end: `nbseal adopt` on a notebook written without nbseal, then `nbseal verify`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from nbseal.notebook import metadata_locks
from tests.e2e.test_cli import nbseal

pytestmark = pytest.mark.usefixtures("default_env")

# 2023-01-01: toolz 0.12.0 and six 1.16.0 exist, both pure Python wheels.
WRITTEN = 1_672_531_200


def _project(folder: Path) -> Path:
    """A small analysis as people write them: requirements, data and a helper module."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "counts.csv").write_text("day,count\nmon,3\ntue,4\n")
    (folder / "helpers.py").write_text("def total(rows):\n    return sum(rows)\n")
    (folder / "requirements.txt").write_text("six\n")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    cells = [
        ("import six\nfrom toolz import pipe\nimport helpers", []),
        (
            "lines = open('data/counts.csv').read().split()[1:]\n"
            "rows = [int(line.split(',')[1]) for line in lines]\n"
            "print(helpers.total(rows), six.PY3, pipe(2, lambda x: x * 10))",
            [nbformat.v4.new_output("stream", name="stdout", text="7 True 20\n")],
        ),
    ]
    for count, (source, outputs) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = outputs
        notebook.cells.append(cell)
    path = folder / "analysis.ipynb"
    nbformat.write(notebook, path)
    os.utime(path, (WRITTEN, WRITTEN))
    return path


def test_adopt_writes_the_first_cell_locks_it_and_verify_reproduces(tmp_path: Path) -> None:
    path = _project(tmp_path / "project")
    proc = nbseal("adopt", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "six: declared in requirements.txt" in proc.stdout
    assert "toolz: `import toolz` in cell 1" in proc.stdout
    assert "pin 2023-01-01T00:00:00Z: the file's modification time" in proc.stdout

    adopted = nbformat.read(path, as_version=4)
    first = adopted.cells[0].source.splitlines()
    assert first[0] == "#seal pin 2023-01-01T00:00:00Z"
    assert first[1] == "#seal env py <- six toolz setuptools>=65,<81"  # an old pin: pkg_resources
    assert sorted(line.split()[2] for line in first[2:]) == ["data/counts.csv", "helpers.py"]
    assert adopted.metadata.kernelspec.name == "nbseal"
    locked = {p.name: p.version for p in metadata_locks(adopted)["py"].packages()}
    assert locked["toolz"] == "0.12.0"
    assert locked["six"] == "1.16.0"

    proc = nbseal("verify", str(path), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    statuses = [cell["status"] for cell in report[0]["cells"]]
    assert statuses.count("reproduced") >= 2, report


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    path = _project(tmp_path)
    before = path.read_bytes()
    proc = nbseal("adopt", "--dry-run", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "would write as its first cell" in proc.stdout
    assert "#seal env py <- six toolz" in proc.stdout
    assert path.read_bytes() == before


def test_a_notebook_nothing_resolves_for_is_left_as_it_was(tmp_path: Path) -> None:
    path = _project(tmp_path)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[0].source += "\nimport nbseal_no_such_distribution_xyz"
    nbformat.write(notebook, path)
    before = path.read_bytes()
    proc = nbseal("adopt", str(path))
    assert proc.returncode == 2
    assert "could be locked; the notebook is unchanged" in proc.stderr
    assert "tried declared versions and imports" in proc.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analysis.ipynb",
        "data",
        "helpers.py",
        "requirements.txt",
    ]


def test_a_folder_is_adopted_and_a_second_adopt_is_refused(tmp_path: Path) -> None:
    first = _project(tmp_path / "one")
    second = _project(tmp_path / "two")
    proc = nbseal("adopt", "--pin", "2023-01-01", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for path in (first, second):
        source = nbformat.read(path, as_version=4).cells[0].source
        assert source.startswith("#seal pin 2023-01-01T00:00:00Z\n#seal env py <- six toolz")
    proc = nbseal("adopt", str(first))
    assert proc.returncode == 2
    assert "already declares its environments (cell 1)" in proc.stderr


def test_files_a_cell_finds_by_pattern_are_there_when_verified(tmp_path: Path) -> None:
    # A loop over glob.glob('runs/*.txt') is silently shorter, or empty, in a
    # sandbox that holds only some of the files: adopt declares every match.
    folder = tmp_path / "project"
    (folder / "runs").mkdir(parents=True)
    (folder / "runs" / "1.txt").write_text("10\n")
    (folder / "runs" / "2.txt").write_text("20\n")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    cell = nbformat.v4.new_code_cell(
        "import glob\nfor name in sorted(glob.glob('runs/*.txt')):\n"
        "    print(name, open(name).read().strip())",
        execution_count=1,
    )
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="runs/1.txt 10\nruns/2.txt 20\n")
    ]
    notebook.cells.append(cell)
    path = folder / "runs.ipynb"
    nbformat.write(notebook, path)
    os.utime(path, (WRITTEN, WRITTEN))

    proc = nbseal("adopt", str(path))
    assert proc.returncode == 0, proc.stderr
    first = nbformat.read(path, as_version=4).cells[0].source.splitlines()
    assert sorted(line.split()[2] for line in first if line.startswith("#seal data")) == [
        "runs/1.txt",
        "runs/2.txt",
    ]
    proc = nbseal("verify", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cell 2: reproduced" in proc.stdout
