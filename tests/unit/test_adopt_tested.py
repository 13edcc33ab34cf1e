"""`nbseal adopt` and a project's tests that execute its notebooks (adopt/tested.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from nbseal.adopt.infer import infer
from nbseal.adopt.projectfiles import requirements_of_tests
from nbseal.adopt.tested import executing_tests

PIN = "2019-03-14T00:00:00Z"

# iminuit 1.3.8's test_notebooks.py, shortened: it runs tutorial/*.ipynb.
RUNNER = """\
from glob import glob
import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

def test_all_notebooks():
    for filename in sorted(glob("tutorial/*.ipynb")):
        ExecutePreprocessor(timeout=1000).preprocess(nbformat.read(filename, 4), {})
"""


def _notebook(folder: Path, *cells: str, name: str = "basic_tutorial.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / name
    nbformat.write(notebook, path)
    return path


def _iminuit_like(root: Path, runner: str = RUNNER) -> Path:
    """iminuit 1.3.8's layout: setup.py with a tests extra, test_notebooks.py, tutorial/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='iminuit', install_requires=['numpy'],\n"
        "      extras_require={'tests': ['pytest', 'cython', 'matplotlib', 'scipy']})\n"
    )
    (root / "test_notebooks.py").write_text(runner)
    return _notebook(root / "tutorial", "from iminuit import Minuit, minimize\nimport numpy")


def test_a_notebook_its_tests_execute_gets_the_tests_requirements(tmp_path: Path) -> None:
    """iminuit's tutorial calls `minimize`, which imports scipy: only the tests extra names it."""
    path = _iminuit_like(tmp_path)
    inference = infer(path, nbformat.read(path, as_version=4), pin=PIN)
    assert inference.run_with == ["cython", "matplotlib", "scipy"], (
        "pytest runs the tests and stays out; numpy and iminuit are there already"
    )
    assert (
        "scipy",
        "declared in ../setup.py (test extra), the requirements of the tests that execute the "
        "notebook (../test_notebooks.py)",
    ) in [(r.what, r.why) for r in inference.reasons]
    sets = inference.requirement_sets()
    assert sets[0][1][-3:] == ["cython", "matplotlib", "scipy"], "after the imports"
    assert sets[-1] == ("imports only", inference.by_import), "without them, if they fail"
    assert "scipy" not in sets[-1][1]
    # Asked of the index like every declared name.
    refused = infer(path, nbformat.read(path, as_version=4), pin=PIN, on_index=lambda n: False)
    assert refused.run_with == []


@pytest.mark.parametrize(
    "runner",
    [
        # Names no notebook runner: a test of the library, not of its notebooks.
        "from glob import glob\ndef test_x():\n    assert glob('tutorial/*.ipynb')\n",
        # Runs notebooks, but others.
        RUNNER.replace("tutorial/*.ipynb", "examples/*.ipynb"),
    ],
    ids=["no-runner", "other-notebooks"],
)
def test_tests_that_do_not_execute_this_notebook_add_nothing(tmp_path: Path, runner: str) -> None:
    path = _iminuit_like(tmp_path, runner)
    assert executing_tests(tmp_path, path) == []
    assert infer(path, nbformat.read(path, as_version=4), pin=PIN).run_with == []


@pytest.mark.parametrize(
    ("where", "runner"),
    [
        ("test_notebooks.py", RUNNER),
        # papermill from tests/, naming the folder through os.path.join.
        (
            "tests/test_examples.py",
            "import os, papermill\nHERE = os.path.dirname(__file__)\n"
            "def test_it():\n    papermill.execute_notebook("
            "os.path.join(HERE, '..', 'tutorial', 'basic_tutorial.ipynb'), '/dev/null')\n",
        ),
        # nbclient, a folder given as ../tutorial/.
        (
            "tests/conftest.py",
            "from pathlib import Path\nfrom nbclient import NotebookClient\n"
            "FOLDER = Path(__file__).parent / '../tutorial/'\n"
            "NOTEBOOKS = [p for p in FOLDER.iterdir() if p.suffix == '.ipynb']\n",
        ),
        # nbconvert --execute in a subprocess, by the notebook's path.
        (
            "pkg/tests/test_nb.py",
            "import subprocess\ndef test_nb():\n    subprocess.run(['jupyter', 'nbconvert', "
            "'--execute', 'tutorial/basic_tutorial.ipynb'], check=True)\n",
        ),
    ],
    ids=["glob", "papermill", "nbclient", "nbconvert-execute"],
)
def test_the_ways_a_test_names_the_notebook_it_executes(
    tmp_path: Path, where: str, runner: str
) -> None:
    path = _iminuit_like(tmp_path, "")
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text(runner)
    assert executing_tests(tmp_path, path) == [tmp_path / where]


def test_the_tests_requirements_come_from_extras_and_files(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text(
        "[options.extras_require]\ntesting =\n    pytest-cov\n    xarray>=0.12\ndocs = sphinx\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\ntest = ["nbval", "netCDF4"]\n'
        'plot = ["bokeh"]\n'
    )
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "test.txt").write_text("coverage\nscipy==1.2.1\nxarray\n")
    found, unreadable = requirements_of_tests(tmp_path, tmp_path)
    assert unreadable == []
    assert [(d.requirement, d.source) for d in found] == [
        ("xarray>=0.12", "setup.cfg (test extra)"),
        ("netCDF4", "pyproject.toml (test extra)"),
        ("scipy==1.2.1", "requirements/test.txt"),
    ], "test tools and other extras stay out; a name declared twice counts once"


def test_an_unreadable_setup_py_is_reported_not_raised(tmp_path: Path) -> None:
    path = _iminuit_like(tmp_path)
    (tmp_path / "setup.py").write_text("setup(extras_require={'tests': [\n")
    inference = infer(path, nbformat.read(path, as_version=4), pin=PIN)
    assert inference.run_with == []
    assert any(w.startswith("could not read ../setup.py") for w in inference.warnings)
