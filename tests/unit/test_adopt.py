"""`nbseal adopt`'s inference: imports, project files, pin and data, without resolving."""

from __future__ import annotations

import datetime as dt
import glob
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbseal.adopt import first_cell, notebooks_in
from nbseal.adopt.datafiles import FOLDER_LIMIT
from nbseal.adopt.documented import documented_distributions
from nbseal.adopt.imports import (
    distribution_for,
    imported_modules,
    is_standard_library,
    pip_installs,
    string_literals,
)
from nbseal.adopt.infer import infer, pin_of
from nbseal.adopt.projectfiles import declared_requirements
from nbseal.directives import DataDirective, EnvDefineDirective, PinDirective, parse_cell
from tests.bounded import stdout_within


def _notebook(folder: Path, *cells: str, name: str = "nb.ipynb") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    path = folder / name
    nbformat.write(notebook, path)
    return path


def test_imports_are_read_from_python_3_code_and_magics() -> None:
    sources = [
        "%matplotlib inline\nimport numpy as np, pandas\nfrom sklearn.datasets import load_iris",
        "from . import local\nimport os.path\nimport numpy\n!ls data",
        "%%bash\nimport not_python",
    ]
    found = [(i.module, i.cell) for i in imported_modules(sources)]
    assert found == [("matplotlib", 1), ("numpy", 1), ("pandas", 1), ("sklearn", 1), ("os", 2)]


def test_python_2_cells_still_yield_their_imports() -> None:
    sources = ['import urllib2, cPickle\nfrom scipy import stats\nprint "hello"']
    modules = [i.module for i in imported_modules(sources)]
    assert modules == ["urllib2", "cPickle", "scipy"]
    assert is_standard_library("urllib2")
    assert is_standard_library("cPickle")
    assert not is_standard_library("scipy")


def test_pip_installs_in_cells_are_requirements() -> None:
    sources = ["%pip install -q seaborn==0.12.2 'tqdm<5'\n!pip install --upgrade $PKG ujson"]
    assert pip_installs(sources) == ["seaborn==0.12.2", "tqdm<5", "ujson"]


def test_import_names_map_to_distributions_through_pipreqs_map() -> None:
    assert distribution_for("sklearn") == ("scikit-learn", True)
    assert distribution_for("PIL") == ("Pillow", True)
    assert distribution_for("yaml") == ("PyYAML", True)
    assert distribution_for("numpy") == ("numpy", False)  # not in the map: same name
    assert distribution_for("cv2") == ("opencv-python", True)  # the gaps' list


def test_the_gaps_list_only_fills_gaps_of_pipreqs_map() -> None:
    from importlib import resources

    folder = resources.files("nbseal.adopt")
    pipreqs = {
        line.partition(":")[0]
        for line in folder.joinpath("pipreqs_mapping.txt").read_text().splitlines()
    }
    extra = [
        line.partition(":")[0]
        for line in folder.joinpath("import_names_extra.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert extra
    assert not set(extra) & pipreqs


def test_string_literals_include_constant_path_joins() -> None:
    sources = ["import os\ndf = read(os.path.join('data', 'x.csv'))\nopen(\"notes.txt\")"]
    literals = [text for text, _ in string_literals(sources)]
    assert "data/x.csv" in literals
    assert "notes.txt" in literals


def test_requirements_txt_skips_options_frontends_and_dev_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# comment\n-r base.txt\nnumpy>=1.20  # inline\njupyter\npandas==1.5.3\n--index-url x\n"
    )
    (tmp_path / "requirements-dev.txt").write_text("pytest\n")
    declared, unreadable = declared_requirements(tmp_path, tmp_path)
    assert [(d.requirement, d.source) for d in declared] == [
        ("numpy>=1.20", "requirements.txt"),
        ("pandas==1.5.3", "requirements.txt"),
    ]
    assert unreadable == []


def test_environment_yml_pyproject_pipfile_setup_files(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(
        "name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.6\n  - numpy=1.14\n"
        "  - scipy=1.1.0=py36_0\n  - pip\n  - pip:\n    - tqdm==4.23.0\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["requests>=2"]\n'
        '[tool.poetry.dependencies]\npython = "^3.8"\nattrs = "^21"\n'
    )
    (tmp_path / "Pipfile").write_text('[packages]\nclick = "*"\nrich = ">=10"\n')
    (tmp_path / "setup.cfg").write_text("[options]\ninstall_requires =\n    toolz\n")
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='p', install_requires=['six>=1.10'])\n"
    )
    declared, unreadable = declared_requirements(tmp_path, tmp_path)
    by_file: dict[str, list[str]] = {}
    for d in declared:
        by_file.setdefault(d.source, []).append(d.requirement)
    assert by_file == {
        "environment.yml": ["numpy==1.14.*", "scipy==1.1.0", "tqdm==4.23.0"],
        "pyproject.toml": ["requests>=2", "attrs"],
        "Pipfile": ["click", "rich>=10"],
        "setup.cfg": ["toolz"],
        "setup.py": ["six>=1.10"],
    }
    assert unreadable == []


def test_an_unreadable_project_file_is_named_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nbroken")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    declared, unreadable = declared_requirements(tmp_path, tmp_path)
    assert [d.requirement for d in declared] == ["numpy"]
    assert len(unreadable) == 1
    assert unreadable[0].startswith("pyproject.toml: ")


def test_the_nearest_project_folder_wins(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scipy\n")
    sub = tmp_path / "notebooks"
    sub.mkdir()
    declared, _ = declared_requirements(sub, tmp_path)
    assert [(d.requirement, d.source) for d in declared] == [("scipy", "../requirements.txt")]
    (sub / "requirements.txt").write_text("sympy\n")
    declared, _ = declared_requirements(sub, tmp_path)
    assert [d.requirement for d in declared] == ["sympy"]


def _git(folder: Path, *args: str, date: str | None = None) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.org"}
    env |= {"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.org"}
    if date:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)


def test_the_pin_is_the_last_commit_else_the_modification_time(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "1 + 1")
    os.utime(path, (1_500_000_000, 1_500_000_000))
    assert pin_of(path) == (
        "2017-07-14T02:40:00Z",
        "the file's modification time (not in a git repository)",
    )
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "nb.ipynb")
    _git(tmp_path, "commit", "-qm", "x", date="2018-03-04T05:06:07+02:00")
    assert pin_of(path) == ("2018-03-04T03:06:07Z", "its last git commit")


def test_a_fresh_copy_is_pinned_by_what_its_outputs_reveal(tmp_path: Path) -> None:
    """A notebook just downloaded (mtime now) names in its metadata the Python that ran it."""
    path = _notebook(tmp_path, "1 + 1")
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.6.5"}
    pin, why = pin_of(path, notebook)
    assert pin == "2018-06-27T00:00:00Z"  # CPython 3.7.0 came out
    assert why.startswith("its outputs were made with Python 3.6.5")
    os.utime(path, (1_500_000_000, 1_500_000_000))  # an old file: its time counts
    assert pin_of(path, notebook)[0] == "2017-07-14T02:40:00Z"


def test_infer_declares_imports_data_and_local_modules(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bikes.csv").write_text("a,b\n1,2\n")
    (tmp_path / "utils.py").write_text("X = 1\n")
    (tmp_path / "requirements.txt").write_text("pandas\n")
    path = _notebook(
        tmp_path,
        "import pandas as pd\nimport utils\nfrom skimage import io\nimport json",
        "df = pd.read_csv('data/bikes.csv')\nmissing = 'data/not-here.csv'\nurl = 'https://x/y.csv'",
    )
    notebook = nbformat.read(path, as_version=4)
    inference = infer(path, notebook, pin="2024-01-01T00:00:00Z")
    assert [d.requirement for d in inference.declared] == ["pandas"]
    assert inference.imported == ["scikit-image"]  # json: stdlib; utils: the folder's own
    assert sorted(d.name for d in inference.data) == ["data/bikes.csv", "utils.py"]
    cell = first_cell(inference, inference.requirement_sets()[0][1])
    parsed = parse_cell(cell).directives
    assert isinstance(parsed[0], PinDirective)
    assert parsed[0].instant == "2024-01-01T00:00:00Z"
    assert isinstance(parsed[1], EnvDefineDirective)
    assert parsed[1].requirements == ("pandas", "scikit-image")
    data = [d for d in parsed if isinstance(d, DataDirective)]
    assert {d.name: d.url for d in data} == {
        "data/bikes.csv": "data/bikes.csv",
        "utils.py": "utils.py",
    }


def test_files_a_cell_lists_by_pattern_are_declared(tmp_path: Path) -> None:
    # glob.glob("data/*.csv") in the sandbox finds only what is declared: an
    # undeclared match would make the loop over it silently shorter.
    (tmp_path / "data" / "2019").mkdir(parents=True)
    for name in ("data/a.csv", "data/b.csv", "data/2019/c.csv", "data/notes.md", "x.txt"):
        (tmp_path / name).write_text("1\n")
    (tmp_path / "many").mkdir()
    for number in range(FOLDER_LIMIT + 1):
        (tmp_path / "many" / f"{number}.json").write_text("{}")
    path = _notebook(
        tmp_path,
        "import glob\nfiles = sorted(glob.glob('data/*.csv'))",
        "runs = glob.glob('data/**/*.csv', recursive=True)\nlogs = glob.glob('logs/*.log')",
        # Not patterns of files: no folder and no extension, or not a name at all.
        "print('*' * 20)\nquery = 'SELECT * FROM t'\nbold = '**note**'",
        "manifests = glob.glob('many/*.json')",
    )
    inference = infer(path, nbformat.read(path, as_version=4), pin="2024-01-01T00:00:00Z")
    assert {d.name: d.cell for d in inference.data} == {
        "data/a.csv": 1,
        "data/b.csv": 1,
        "data/2019/c.csv": 2,
    }
    (note,) = [w for w in inference.warnings if "many/*.json" in w]
    assert f"more than {FOLDER_LIMIT} files: too many" in note


def test_a_pattern_walks_only_inside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The walk itself is the cost (a notebook's '../../**/*.txt' would walk the
    # disk): record which patterns are walked at all.
    walked: list[str] = []
    iglob = glob.iglob

    def recording(pattern: str, **kwargs: Any) -> Iterator[str]:
        walked.append(pattern)
        return iglob(pattern, **kwargs)

    monkeypatch.setattr(glob, "iglob", recording)
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / ".git").mkdir()  # the project's top
    (project / "data.csv").write_text("1\n")
    (tmp_path / "secret.txt").write_text("outside the project\n")
    deep = project / "runs" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "r.csv").write_text("1\n")
    path = _notebook(
        project / "notebooks",
        "import glob\nup = glob.glob('../*.csv')\nout = glob.glob('../../*.txt')",
        # Nested '**' multiply the folders walked: not taken as a pattern.
        "slow = glob.glob('../runs/**/**/*.csv', recursive=True)",
        "ok = glob.glob('../runs/**/*.csv', recursive=True)",
    )
    inference = infer(path, nbformat.read(path, as_version=4), pin="2025-01-01T00:00:00Z")
    assert {d.name: d.cell for d in inference.data} == {
        "../data.csv": 1,
        "../runs/a/b/r.csv": 3,
    }
    assert walked == ["../*.csv", "../runs/**/*.csv"]


def test_a_progress_bar_in_the_stored_outputs_brings_tqdm(tmp_path: Path) -> None:
    # emcee's line-fitting tutorial: sampler.run_mcmc(..., progress=True) drew a
    # tqdm bar; without tqdm installed, emcee logs a warning instead.
    path = _notebook(tmp_path, "import emcee", "sampler.run_mcmc(pos, 5000, progress=True);")
    notebook = nbformat.read(path, as_version=4)
    bar = "100%|██████████| 5000/5000 [00:06<00:00, 815.49it/s]\n"
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=bar)]
    inference = infer(path, notebook, pin="2025-01-01T00:00:00Z")
    assert inference.imported == ["emcee", "tqdm"]
    (why,) = [r.why for r in inference.reasons if r.what == "tqdm"]
    assert why.startswith("cell 2's stored output shows a tqdm progress bar")
    # Imported by a cell, tqdm comes once, for its import.
    notebook.cells[0].source = "import emcee\nfrom tqdm import tqdm"
    inference = infer(path, notebook, pin="2025-01-01T00:00:00Z")
    assert inference.imported == ["emcee", "tqdm"]
    (why,) = [r.why for r in inference.reasons if r.what == "tqdm"]
    assert why.startswith("`import tqdm`")
    # Other text with percentages and bars is not tqdm's.
    notebook.cells[0].source = "import emcee"
    table = "| 50% | 3/4 |\n 40%|####  | done\n"
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=table)]
    assert infer(path, notebook, pin="2025-01-01T00:00:00Z").imported == ["emcee"]


def test_requirement_sets_loosen_declared_versions_then_drop_them(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("numpy==1.14.5\nhdf4==4.2.12\n")
    path = _notebook(tmp_path, "import numpy, scipy")
    inference = infer(path, nbformat.read(path, as_version=4), pin="2024-06-01T00:00:00Z")
    assert inference.requirement_sets() == [
        ("declared versions and imports", ["numpy==1.14.5", "hdf4==4.2.12", "scipy"]),
        ("declared names without versions, and imports", ["numpy", "hdf4", "scipy"]),
        # What the cells import, declared or not (a conda file's names may not be PyPI's).
        ("imports only", ["numpy", "scipy"]),
    ]


def test_conda_names_become_pypi_names(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(
        "dependencies:\n  - pytables\n  - matplotlib-base=3.1\n  - numpy\n"
    )
    declared, _ = declared_requirements(tmp_path, tmp_path)
    assert [d.requirement for d in declared] == ["tables", "matplotlib==3.1.*", "numpy"]


def test_declared_names_the_index_lacks_are_left_out_and_said(tmp_path: Path) -> None:
    """pvlib's docs/environment.yml names conda's hdf4: keeping it, no declared set
    resolved and adopt fell back to the imports, losing ephem and numba."""
    (tmp_path / "requirements.txt").write_text("numpy==1.14.5\nhdf4==4.2.12\nephem\n")
    path = _notebook(tmp_path, "import numpy, scipy")
    asked: list[str] = []

    def on_index(name: str) -> bool:
        asked.append(name)
        return name != "hdf4"

    notebook = nbformat.read(path, as_version=4)
    inference = infer(path, notebook, pin="2024-06-01T00:00:00Z", on_index=on_index)
    assert sorted(asked) == ["ephem", "hdf4", "numpy"]
    assert [d.requirement for d in inference.declared] == ["numpy==1.14.5", "ephem"]
    assert inference.requirement_sets()[1] == (
        "declared names without versions, and imports",
        ["numpy", "ephem", "scipy"],
    )
    assert inference.warnings == [
        "left out, the package index has no such project: hdf4==4.2.12 (declared in "
        "requirements.txt)"
    ]
    # Without an index to ask, nothing is left out.
    assert len(infer(path, notebook, pin="2024-06-01T00:00:00Z").declared) == 3


@pytest.mark.parametrize(
    "conf",
    [
        "import os\nimport pvlib\nversion = '%s' % (pvlib.__version__)\n",
        "from pkg_resources import get_distribution\n"
        "__version__ = get_distribution('pvlib').version\n",
        "import pkg_resources\nproject = 'pvlib'\n"
        "version = pkg_resources.get_distribution(project).version\n",
        # pysindy 1.3's docs/conf.py
        "import importlib\nproject = 'pvlib'\nmodule = importlib.import_module(project)\n"
        "version = release = getattr(module, '__version__')\n",
        "from importlib import import_module\nm = import_module('pvlib')\n"
        "version = m.__version__\n",
    ],
)
def test_the_docs_sphinx_conf_names_what_they_document(tmp_path: Path, conf: str) -> None:
    (tmp_path / "sphinx" / "source").mkdir(parents=True)
    (tmp_path / "sphinx" / "source" / "conf.py").write_text(conf)
    assert documented_distributions(tmp_path) == {"pvlib"}


def test_a_local_objects_version_or_an_unparsable_conf_names_nothing(tmp_path: Path) -> None:
    (tmp_path / "conf.py").write_text("class V:\n    __version__ = '1'\nrelease = V.__version__\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "conf.py").write_text("print 'python 2'\n")
    assert documented_distributions(tmp_path) == set()


def _releases(name: str) -> list[tuple[str, dt.datetime]]:
    utc = dt.timezone.utc
    table = {
        "pvlib": [("0.5.2", dt.datetime(2018, 5, 13, tzinfo=utc)),
                  ("0.6.0", dt.datetime(2018, 9, 17, 21, 12, 5, 777, tzinfo=utc))],
        "numpy": [("1.15.1", dt.datetime(2018, 8, 21, tzinfo=utc))],
    }  # fmt: skip
    return table.get(name, [])


def test_a_notebook_in_its_project_s_docs_is_pinned_at_that_project_s_next_release(
    tmp_path: Path,
) -> None:
    """pvlib's tutorials (last commit 2018-08-14) call get_relative_airmass, new in pvlib
    0.6.0 (2018-09-17): they ran pvlib's development version, which 0.6.0 released."""
    (tmp_path / "conf.py").write_text("import pvlib\nversion = pvlib.__version__\n")
    (tmp_path / "tutorials").mkdir()
    path = _notebook(tmp_path / "tutorials", "import pvlib, numpy")
    notebook = nbformat.read(path, as_version=4)
    os.utime(path, (0, dt.datetime(2018, 8, 14, tzinfo=dt.timezone.utc).timestamp()))
    moved = infer(path, notebook, releases=_releases)
    assert moved.pin == "2018-09-17T21:12:06Z"  # only pvlib's release moves it, not numpy's
    assert moved.pin_source.endswith(
        "(2018-08-14T00:00:00Z), moved to pvlib 0.6.0's release (2018-09-17): the notebook is "
        "in pvlib's own documentation, written against its development version"
    )
    # A pin the user gives stays; so does one whose next release came too late.
    assert infer(path, notebook, pin="2018-08-14T00:00:00Z", releases=_releases).pin == (
        "2018-08-14T00:00:00Z"
    )
    os.utime(path, (0, dt.datetime(2017, 6, 1, tzinfo=dt.timezone.utc).timestamp()))
    assert infer(path, notebook, releases=_releases).pin == "2017-06-01T00:00:00Z"
    # A notebook that does not import what the docs are of is not moved.
    other = _notebook(tmp_path / "tutorials", "import numpy", name="other.ipynb")
    os.utime(other, (0, dt.datetime(2018, 8, 14, tzinfo=dt.timezone.utc).timestamp()))
    unmoved = infer(other, nbformat.read(other, as_version=4), releases=_releases)
    assert unmoved.pin == "2018-08-14T00:00:00Z"


def _sktime_like(root: Path, extensions: str) -> Path:
    """sktime 0.4.3's layout: docs/source/conf.py, docs/requirements.txt, examples/."""
    (root / "docs" / "source").mkdir(parents=True)
    (root / "docs" / "source" / "conf.py").write_text(
        f"import sktime\nCURRENT_VERSION = f'v{{sktime.__version__}}'\nextensions = {extensions}\n"
    )
    (root / "docs" / "requirements.txt").write_text(
        "jupyter\nm2r2\nnbsphinx\nnumpydoc\npmdarima\nsphinx==3.2.*\nsphinx_rtd_theme\n"
    )
    (root / "setup.py").write_text("from setuptools import setup\nsetup(name='sktime')\n")
    (root / "examples").mkdir()
    return _notebook(root / "examples", "from sktime.forecasting.all import *")


def test_a_notebook_its_docs_render_gets_the_docs_requirements(tmp_path: Path) -> None:
    """sktime's forecasting notebook needs pmdarima, a soft dependency no import names;
    the docs that run it (nbsphinx) install it."""
    path = _sktime_like(tmp_path, "['sphinx.ext.autodoc', 'nbsphinx']")
    notebook = nbformat.read(path, as_version=4)
    inference = infer(path, notebook, pin="2020-10-20T00:00:00Z")
    assert inference.run_with == ["pmdarima"], (
        "the docs' own tools (Sphinx, nbsphinx, numpydoc, m2r2, the theme, jupyter) stay out"
    )
    assert inference.declared == [], "setup.py declares nothing it can be read for"
    assert (
        "pmdarima",
        "declared in ../docs/requirements.txt, the requirements of the docs that render the "
        "notebook",
    ) in [(r.what, r.why) for r in inference.reasons]
    # After the imports: uv prefers the newest releases of what comes first, and
    # sktime 0.4.3 needs a statsmodels that pmdarima 1.7.1 excludes.
    sets = inference.requirement_sets()
    assert sets[0] == (
        "declared versions and imports",
        ["sktime", *inference.imported[1:], "pmdarima"],
    )
    assert sets[-1][0] == "imports only", "without the docs' requirements, if they fail"
    # Asked of the index like every declared name.
    refused = infer(path, notebook, pin="2020-10-20T00:00:00Z", on_index=lambda n: False)
    assert refused.run_with == []


def test_docs_that_render_no_notebook_or_another_project_add_nothing(tmp_path: Path) -> None:
    path = _sktime_like(tmp_path / "a", "['sphinx.ext.autodoc']")
    assert infer(path, nbformat.read(path, as_version=4), pin="2020-10-20T00:00:00Z").run_with == []
    appended = _sktime_like(tmp_path / "b", "[]\nextensions.append('nbsphinx')")
    found = infer(appended, nbformat.read(appended, as_version=4), pin="2020-10-20T00:00:00Z")
    assert found.run_with == ["pmdarima"]
    other = _notebook(tmp_path / "b" / "examples", "import numpy", name="other.ipynb")
    unrelated = infer(other, nbformat.read(other, as_version=4), pin="2020-10-20T00:00:00Z")
    assert unrelated.run_with == []


def test_docs_of_a_sibling_folder_outside_any_project_are_not_the_notebook_s(
    tmp_path: Path,
) -> None:
    """Outside git, the notebook's folder's parent is taken as its project: in a home
    folder that also holds a clone of sktime, sktime's docs are not this notebook's."""
    _sktime_like(tmp_path / "src" / "sktime", "['nbsphinx']")
    (tmp_path / "notebooks").mkdir()
    path = _notebook(tmp_path / "notebooks", "import sktime")
    notebook = nbformat.read(path, as_version=4)
    os.utime(path, (0, dt.datetime(2020, 10, 12, tzinfo=dt.timezone.utc).timestamp()))
    releases = lambda name: [("0.4.3", dt.datetime(2020, 10, 20, tzinfo=dt.timezone.utc))]  # noqa: E731
    inference = infer(path, notebook, releases=releases)
    assert inference.run_with == []
    assert inference.pin == "2020-10-12T00:00:00Z", "not moved to sktime's release"
    # The same home folder with a project file at its top is a project.
    (tmp_path / "requirements.txt").write_text("sktime\n")
    inside = infer(path, notebook, releases=releases)
    assert inside.run_with == ["pmdarima"]


def test_a_release_is_out_when_its_files_of_that_day_are() -> None:
    from packaging.version import Version

    from nbseal.adopt import release_times
    from nbseal.backends.pypi_index import IndexFile

    def file(version: str, when: str, name: str = "", yanked: bool = False) -> IndexFile:
        at = dt.datetime.fromisoformat(when)
        return IndexFile(
            name or f"x-{version}", Version(version), None, at, None, yanked, "", False
        )

    files = [
        # sktime 0.4.3: a macOS wheel first, the Linux wheels 14 minutes later
        file("0.4.3", "2020-10-20T16:11:01+00:00"),
        file("0.4.3", "2020-10-20T16:25:13+00:00"),
        file("0.4.3", "2020-10-20T17:37:17+00:00"),
        # a wheel for a Python that came out months after the release
        file("0.4.3", "2021-03-01T00:00:00+00:00"),
        file("0.4.1", "2020-08-01T00:00:00+00:00"),
        file("0.5.0rc1", "2020-12-01T00:00:00+00:00"),
        file("0.4.2", "2020-09-01T00:00:00+00:00", yanked=True),
    ]
    assert sorted(release_times(files)) == [
        ("0.4.1", dt.datetime(2020, 8, 1, tzinfo=dt.timezone.utc)),
        ("0.4.3", dt.datetime(2020, 10, 20, 17, 37, 17, tzinfo=dt.timezone.utc)),
    ]


def test_old_pins_get_setuptools_and_local_packages_are_shared(tmp_path: Path) -> None:
    """pkg_resources came with every venv of CPython < 3.12; a package beside the notebook
    (lifelines' own source next to its notebook) is shared where the import finds it."""
    (tmp_path / "mylib").mkdir()
    (tmp_path / "mylib" / "__init__.py").write_text("X = 1\n")
    (tmp_path / "mylib" / "table.csv").write_text("a\n")
    # IPython's "Importing Notebooks" opens files of the package it imports: the share
    # shows them; a data line inside the shared folder could not be placed.
    path = _notebook(tmp_path, "import mylib, numpy\nopen('mylib/table.csv')")
    old = infer(path, nbformat.read(path, as_version=4), pin="2018-06-01T00:00:00Z")
    assert old.imported == ["numpy", "setuptools>=65,<81"]
    assert old.packages == ["mylib"]
    lines = first_cell(old, old.imported).splitlines()
    assert "#seal share mylib" in lines
    assert [line for line in lines if line.startswith("#seal data")] == []
    new = infer(path, nbformat.read(path, as_version=4), pin="2025-06-01T00:00:00Z")
    assert new.imported == ["numpy"]


def test_folders_are_searched_for_notebooks_without_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "a" / ".ipynb_checkpoints").mkdir(parents=True)
    _notebook(tmp_path / "a", "1", name="one.ipynb")
    _notebook(tmp_path / "a" / ".ipynb_checkpoints", "1", name="one-checkpoint.ipynb")
    _notebook(tmp_path, "1", name="two.ipynb")
    assert notebooks_in([tmp_path]) == [tmp_path / "a" / "one.ipynb", tmp_path / "two.ipynb"]


@pytest.mark.parametrize("language", ["R", "julia"])
def test_only_python_notebooks_are_adopted(tmp_path: Path, language: str) -> None:
    from nbseal.adopt import adopt_notebook
    from nbseal.errors import AdoptError

    path = _notebook(tmp_path, "1")
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"]["language"] = language
    nbformat.write(notebook, path)
    before = path.read_bytes()
    with pytest.raises(AdoptError, match=f"is a {language} notebook"):
        adopt_notebook(path)
    assert path.read_bytes() == before


def test_files_beside_the_notebook_s_folder_are_shared_not_hashed(tmp_path: Path) -> None:
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "custom.css").write_text("body {}")
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "x.csv").write_text("a\n")
    (tmp_path / "top.txt").write_text("t")
    (tmp_path / "notebooks").mkdir()
    path = _notebook(
        tmp_path / "notebooks",
        "css = open('../styles/custom.css').read()\nx = open('../data/raw/x.csv')\n"
        "t = open('../top.txt')\nnot_there = open('../nothing.txt')",
    )
    inference = infer(path, nbformat.read(path, as_version=4), pin="2025-01-01T00:00:00Z")
    assert inference.hashed == []
    assert inference.shares == ["../styles", "../data", "../top.txt"]
    cell = first_cell(inference, [])
    assert cell.splitlines()[1:] == [
        "#seal share ../styles",
        "#seal share ../data",
        "#seal share ../top.txt",
    ]


class _Pythons:
    """Stands in for the machine's interpreters: one path per series, or none and why."""

    def __init__(self, found: dict[str, str]) -> None:
        self.found = found
        self.asked: list[str] = []

    async def find(self, request: str) -> tuple[str | None, str]:
        self.asked.append(request)
        return self.found.get(request), "No download found for request"


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="dates of CPython 3.11")
def test_an_old_pin_asks_for_the_python_current_then_where_it_is_here(tmp_path: Path) -> None:
    from nbseal.adopt import _candidates

    path = _notebook(tmp_path, "import numpy")
    notebook = nbformat.read(path, as_version=4)
    here = _Pythons({"3.6": "/opt/py/3.6.15/bin/python3.6"})
    old = infer(path, notebook, pin="2018-01-10T00:00:00Z", pythons=here)
    assert here.asked == ["3.6"]
    assert old.python_pick is not None
    assert old.python_pick.option == "python=auto"
    shown = {r.what: r.why for r in old.reasons}
    assert shown["python=auto"] == (
        "CPython 3.6 was current at 2018-01-10, found at /opt/py/3.6.15/bin/python3.6"
    )
    assert old.imported == ["numpy", "setuptools<81"], "the newest setuptools 3.6 runs"
    tries = _candidates(old)
    assert tries[0] == ("imports only, on CPython 3.6", ["numpy", "setuptools<81"], "python=auto")
    assert tries[-1] == ("imports only, on this Python", ["numpy", "setuptools>=65,<81"], None)
    assert first_cell(old, tries[0][1], tries[0][2]).splitlines()[1] == (
        "#seal env py <- numpy setuptools<81 python=auto"
    )

    nowhere = _Pythons({})
    lost = infer(path, notebook, pin="2018-01-10T00:00:00Z", pythons=nowhere)
    assert lost.python_pick is not None
    assert lost.python_pick.option is None
    assert "python=auto" not in {r.what for r in lost.reasons}
    assert any(
        "CPython 3.6 was current at 2018-01-10 but cannot be had here" in w for w in (lost.warnings)
    )
    assert [t[2] for t in _candidates(lost)] == [None]

    recent = _Pythons({"3.11": "/elsewhere"})
    assert infer(path, notebook, pin="2023-06-01T00:00:00Z", pythons=recent).python_pick is None
    assert recent.asked == [], "a pin of this Python's time asks for nothing"
    # --python this: no provider, nothing asked
    assert infer(path, notebook, pin="2018-01-10T00:00:00Z").python_pick is None


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="dates of CPython 3.11")
def test_the_python_that_ran_the_outputs_comes_before_the_one_current_at_the_pin(
    tmp_path: Path,
) -> None:
    """sktime's forecasting notebook (2020-10) ran on CPython 3.7.8; 3.9, current then,
    had no sktime wheel for a year."""
    from nbseal.adopt import _candidates

    (tmp_path / ".git").mkdir()  # the project is this folder alone
    path = _notebook(tmp_path, "import sktime")
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.7.8"}
    both = _Pythons({"3.7": "/opt/py/3.7.16/bin/python3.7", "3.9": "/opt/py/3.9.18/bin/python3.9"})
    inference = infer(path, notebook, pin="2020-10-20T00:00:00Z", pythons=both)
    assert both.asked == ["3.7"]
    assert inference.python_pick is not None
    assert inference.python_pick.option == "python=3.7"
    assert {r.what: r.why for r in inference.reasons}["python=3.7"] == (
        "CPython 3.7.8 ran the stored outputs (the notebook's metadata), found at "
        "/opt/py/3.7.16/bin/python3.7"
    )
    assert _candidates(inference)[0] == (
        "imports only, on CPython 3.7",
        ["sktime", "setuptools<81"],
        "python=3.7",
    )
    # Not here: the CPython current at the pin, as before.
    only_new = _Pythons({"3.9": "/opt/py/3.9.18/bin/python3.9"})
    fallback = infer(path, notebook, pin="2020-10-20T00:00:00Z", pythons=only_new)
    assert only_new.asked == ["3.7", "3.9"]
    assert fallback.python_pick is not None
    assert fallback.python_pick.option == "python=auto"
    # Python 2, or this Python's own series, is not asked for.
    for version in ("2.7.15", "3.11.2"):
        notebook.metadata["language_info"]["version"] = version
        asked = _Pythons({"2.7": "/opt/py/2.7/bin/python", "3.9": "/opt/py/3.9/bin/python3.9"})
        infer(path, notebook, pin="2020-10-20T00:00:00Z", pythons=asked)
        assert asked.asked == ["3.9"], version


def test_a_long_number_in_stored_outputs_is_scanned_in_one_pass() -> None:
    # The progress-bar pattern, tried from every digit of 200,000 (a hostile or
    # merely long output), took minutes; adopt must get through it.
    code = (
        "from nbseal.adopt.imports import drawn_by_tqdm\n"
        "out = {'output_type': 'stream', 'name': 'stdout', 'text': '7' * 200_000}\n"
        "print(drawn_by_tqdm({'cells': [{'cell_type': 'code', 'outputs': [out]}]}))\n"
    )
    assert stdout_within(code) == "None\n"
