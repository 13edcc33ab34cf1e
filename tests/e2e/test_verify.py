"""`nbseal verify` and `nbseal export`, end to end through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

from tests.archives import extract_known
from tests.e2e.test_cli import nbseal, notebook
from tests.e2e.test_hostile import sdist

pytestmark = pytest.mark.usefixtures("default_env")

PINNED = "#seal pin 2025-06-01\n#seal env py <- six==1.16.0\nimport six\nprint(six.__version__)"


def _ran(path: Path, *cells: str) -> nbformat.NotebookNode:
    """A notebook of ``cells`` at ``path``, locked and run: its outputs are the stored run's."""
    nbformat.write(notebook(*cells), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0
    return nbformat.read(path, as_version=4)


STEADY = [
    PINNED,
    "print(object())  # a memory address",
    "%time total = sum(range(1000))",
    "total",
    "# NBVAL_RAISES_EXCEPTION\nraise ValueError('expected')",
    "# NBVAL_SKIP\nimport random\nprint(random.random())",
    "from IPython.display import HTML\nHTML('<b>bold</b>   <i>x</i>')",
]


def locked_and_run(tmp_path: Path, *sources: str, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    nb = notebook(*sources)
    nb.cells[4 if len(sources) > 4 else 0].metadata["tags"] = []
    nbformat.write(nb, path)
    assert nbseal("lock", str(path)).returncode == 0
    run = nbseal("run", str(path))
    assert run.returncode in (0, 1), run.stderr
    return path


def test_a_run_notebook_verifies_and_the_original_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nb = notebook(*STEADY)
    nb.cells[4].metadata["tags"] = ["raises-exception"]  # so `nbseal run` goes on
    nbformat.write(nb, path)
    assert nbseal("lock", str(path)).returncode == 0
    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    before = path.read_bytes()
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified (6 reproduced, 0 differs, 0 error, 1 skipped" in verify.stdout
    for cell in (1, 2, 3, 4, 5, 7):
        assert f"cell {cell}: reproduced" in verify.stdout
    assert "cell 6: skipped (NBVAL_SKIP)" in verify.stdout
    assert path.read_bytes() == before, "verify never modifies the notebook"


def test_strings_hash_the_same_in_every_run(tmp_path: Path) -> None:
    """A set of strings iterates in an order set by the interpreter's hash seed, random
    in each process unless PYTHONHASHSEED fixes it: without the fixed seed, this
    notebook's run and its verify print different orders (and hashes)."""
    path = tmp_path / "nb.ipynb"
    words = "{'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'}"
    _ran(path, PINNED, "print(hash('nbseal'))", f"print(list({words}))")
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    assert "cell 3: reproduced" in verify.stdout


def test_a_changed_output_fails_and_the_diff_names_the_cell(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nb = _ran(path, PINNED, "print('forty-two')")
    nb.cells[1].outputs[0]["text"] = "forty-three\n"
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 1
    assert "cell 1: reproduced" in verify.stdout
    assert "cell 2: differs" in verify.stdout
    assert "-forty-three" in verify.stdout
    assert "+forty-two" in verify.stdout
    report = tmp_path / "report.html"
    as_json = nbseal("verify", "--json", "--report", str(report), str(path))
    (result,) = json.loads(as_json.stdout)
    assert result["ok"] is False
    assert [c["status"] for c in result["cells"]] == ["reproduced", "differs"]
    assert "forty-three" in report.read_text()


def test_outputs_stored_unsealed_verify_against_the_sealed_rerun(tmp_path: Path) -> None:
    # Stored by a run without the output policy (an old nbseal, plain Jupyter):
    # the stored HTML still holds its handler, the re-run's does not.
    path = tmp_path / "nb.ipynb"
    cell = "from IPython.display import HTML\nHTML('<b onclick=\"x()\">bold</b>')"
    nb = _ran(path, PINNED, cell)
    (result,) = nb.cells[1].outputs
    assert result["data"]["text/html"] == "<b>bold</b>", "nbseal run stores sealed outputs"
    result["data"]["text/html"] = '<b onclick="x()">bold</b>'
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    # A changed text is still a difference once both are sealed.
    result["data"]["text/html"] = '<b onclick="x()">other</b>'
    nbformat.write(nb, path)
    assert nbseal("verify", str(path)).returncode == 1


@pytest.mark.parametrize(("marker", "code"), [("", 1), ("# NBVAL_IGNORE_OUTPUT\n", 0)])
def test_an_unseeded_random_number_needs_the_ignore_marker(
    tmp_path: Path, marker: str, code: int
) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED, f"{marker}import random\nprint(random.random())"), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0
    verify = nbseal("verify", str(path))
    assert verify.returncode == code, verify.stdout


def test_a_missing_lock_is_refused_unless_relock(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED), path)
    assert nbseal("run", str(path)).returncode == 0  # run, never locked
    refused = nbseal("verify", str(path))
    assert refused.returncode == 2
    assert "its lock is missing or stale" in refused.stdout
    assert "py: missing" in refused.stdout
    assert "--relock" in refused.stdout
    relocked = nbseal("verify", "--relock", str(path))
    assert relocked.returncode == 0, relocked.stdout
    assert not list(tmp_path.glob(".nb.verify-*")), "the locked copy is removed"
    assert "metadata" not in json.loads(path.read_text())["metadata"].get("nbseal", {}).get(
        "environments", {}
    )


def test_sanitisers_in_nbval_format_and_parallel_notebooks(tmp_path: Path) -> None:
    sanitize = tmp_path / "sanitize.cfg"
    sanitize.write_text("[stamp]\nregex: \\d{4}-\\d{2}-\\d{2}T[\\d:.]+\nreplace: STAMP\n")
    paths = []
    for index in range(2):
        path = tmp_path / f"nb{index}.ipynb"
        nbformat.write(
            notebook(PINNED, "import datetime\nprint(datetime.datetime.now().isoformat())"), path
        )
        assert nbseal("lock", str(path)).returncode == 0
        assert nbseal("run", str(path)).returncode == 0
        paths.append(str(path))
    assert nbseal("verify", *paths).returncode == 1, "the time differs without a sanitiser"
    verified = nbseal("verify", "-j", "2", "--sanitize-with", str(sanitize), *paths)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count(": verified") == 2


@pytest.fixture(scope="session")
def nbval_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample notebooks of nbval's source distribution, from PyPI."""
    where = tmp_path_factory.mktemp("nbval")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "-q", "--no-deps"),
            *("--no-binary", ":all:", "-d", str(where), "nbval==0.11.0"),
        ],
        check=True,
        timeout=300,
    )
    (sdist,) = where.glob("nbval-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/tests/ipynb-test-samples/" in m.name]
        extract_known(archive, where, members)
    (samples,) = where.glob("nbval-*/tests/ipynb-test-samples")
    return samples


DEFAULT_ENV = """# /// script
# dependencies = ["sympy"]
# [tool.uv]
# exclude-newer = "2025-06-01T00:00:00Z"
# ///"""


def test_nbval_samples_pass_or_fail_as_named(nbval_samples: Path, tmp_path: Path) -> None:
    samples = sorted(nbval_samples.glob("*.ipynb"))
    assert len(samples) >= 6
    paths = []
    for sample in samples:
        nb = nbformat.read(sample, as_version=4)
        # "given a default environment": a PEP 723 cell in front, as juv writes it.
        nb.cells.insert(0, nbformat.v4.new_code_cell(DEFAULT_ENV))
        path = tmp_path / sample.name
        nbformat.write(nb, path)
        paths.append(path)
    proc = nbseal("verify", "--relock", "--json", "-j", "2", *map(str, paths))
    results = {Path(r["notebook"]).name: r for r in json.loads(proc.stdout)}
    for name, result in results.items():
        expected = "-pass-" in name
        assert result["problem"] is None, (name, result["problem"])
        assert result["ok"] is expected, (name, result["cells"])
    assert proc.returncode == 1


def test_pep723_export_runs_with_uv_and_prints_the_same(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED, "%env NBSEAL_EXAMPLE=1", "print(six.PY3)"), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0
    script = tmp_path / "nb.py"
    exported = nbseal("export", str(path), "--to", "script", "-o", str(script))
    assert exported.returncode == 0, exported.stderr
    text = script.read_text()
    assert 'exclude-newer = "2025-06-01T00:00:00Z"' in text
    assert '"six==1.16.0"' in text
    assert "What this script loses: the sandbox" in text
    from uv import find_uv_bin

    ran = subprocess.run(
        [find_uv_bin(), "run", "--no-project", "--python", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    executed = nbformat.read(path, as_version=4)
    # The magic's cell is left out of the script (and says so); the rest prints alike.
    assert "# nbseal export: IPython-only line left out: %env" in text
    cells = [executed.cells[0], executed.cells[2]]
    printed = "".join(o.get("text", "") for c in cells for o in c.outputs)
    assert ran.stdout == printed == "1.16.0\nTrue\n"


def test_requirements_and_lock_exports_keep_every_hash(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED), path)
    assert nbseal("export", str(path), "--to", "lock").returncode == 2, "no lock yet"
    assert nbseal("lock", str(path)).returncode == 0
    requirements = nbseal("export", str(path), "--to", "requirements").stdout
    assert "# environment py: Python" in requirements
    assert "six==1.16.0 \\\n    --hash=sha256:" in requirements
    lock = json.loads(nbseal("export", str(path), "--to", "lock").stdout)
    meta = nbformat.read(path, as_version=4).metadata["nbseal"]["environments"]
    assert lock["environments"]["py"]["pylock"] == meta["py"]["pylock"]


def test_the_examples_verify(tmp_path: Path) -> None:
    """What a newcomer runs first must itself reproduce, from its own locks."""
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.ipynb"))
    assert len(examples) >= 3
    before = [e.read_bytes() for e in examples]
    verify = nbseal("verify", "-j", "2", *map(str, examples))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": verified") == len(examples)
    assert [e.read_bytes() for e in examples] == before


# -- issue 16, item 4: verify explains ---------------------------------------------


def cells_of(stdout: str) -> dict[int, dict[str, object]]:
    (result,) = json.loads(stdout)
    return {cell["cell"]: cell for cell in result["cells"]}


def test_an_unseeded_random_number_is_explained_as_nondeterminism(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    seeded = "import random\nrandom.seed(7)\nprint(random.random())"
    nbformat.write(notebook(PINNED, "import random\nprint(random.random())", seeded), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0
    verify = nbseal("verify", str(path))
    assert verify.returncode == 1
    assert (
        "cell 2: differs — nondeterminism: unseeded random numbers: "
        "`print(random.random())` (no random seed before)"
    ) in verify.stdout
    assert "cell 3: reproduced" in verify.stdout, "a seeded generator repeats itself"
    cells = cells_of(nbseal("verify", "--json", str(path)).stdout)
    assert cells[2]["status"] == "differs"
    assert cells[2]["cause"] == "nondeterminism"
    assert "random.random()" in str(cells[2]["evidence"])
    assert cells[2]["diff"], "the diff is kept beside the cause"
    assert cells[3]["cause"] == ""


def test_a_stored_error_that_recurs_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED, "print('before')\n1/0", "print('after')"), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", "--allow-errors", str(path)).returncode == 0
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout
    assert (
        "cell 2: reproduced (raised as stored: ZeroDivisionError: division by zero)"
        in verify.stdout
    )
    # Another stored error is an error, with both named.
    nb = nbformat.read(path, as_version=4)
    stored = next(o for o in nb.cells[1].outputs if o["output_type"] == "error")
    stored["ename"], stored["evalue"] = "KeyError", "'k'"
    nbformat.write(nb, path)
    other = nbseal("verify", str(path))
    assert other.returncode == 1
    assert (
        "cell 2: error — error: ZeroDivisionError: division by zero, "
        "where the stored cell raised KeyError: 'k'"
    ) in other.stdout


def test_a_missing_file_is_missing_data_with_the_hint(tmp_path: Path) -> None:
    # The file is next to the notebook, but the sandbox shows only declared data.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bikes.csv").write_text("a,b\n1,2\n")
    path = tmp_path / "nb.ipynb"
    nb = notebook(PINNED, "print(open('data/bikes.csv').read())")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="a,b\n1,2\n\n")]
    nb.cells[1].execution_count = 2
    nbformat.write(nb, path)
    assert nbseal("lock", str(path)).returncode == 0
    verify = nbseal("verify", str(path))
    assert verify.returncode == 1
    assert "cell 2: error — missing data: the re-run cannot open 'data/bikes.csv'" in verify.stdout
    assert (
        "hint: declare it: `nbseal data add nb.ipynb data/bikes.csv`, or `#seal share data`"
        in verify.stdout
    )


BROKEN_BACKEND = """
def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(directory, config_settings=None):
    import os
    info = os.path.join(directory, "brokenpkg-0.1.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: brokenpkg\\nVersion: 0.1\\n")
    return "brokenpkg-0.1.dist-info"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("nbseal test: this package never builds")
"""


def _broken_sdist(folder: Path) -> Path:
    """An sdist that resolves (its backend gives its metadata) but never builds."""
    return sdist(folder, "brokenpkg", BROKEN_BACKEND)


def test_an_environment_that_fails_to_build_is_reported_once(tmp_path: Path) -> None:
    define = f"#seal env broken <- 'brokenpkg @ file://{_broken_sdist(tmp_path)}' pin=2025-06-01"
    path = tmp_path / "nb.ipynb"
    nb = notebook(f"{define}\nprint('one')", f"{define}\nprint('two')", "print('three')")
    for number, cell in enumerate(nb.cells, start=1):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{number}\n")]
        cell.execution_count = number
    nbformat.write(nb, path)
    assert nbseal("lock", str(path)).returncode == 0, "it resolves: only its build fails"
    verify = nbseal("verify", str(path))
    assert verify.returncode == 1
    said = verify.stdout
    assert said.count("could not install the environment") == 1, said
    assert said.count("RuntimeError: nbseal test: this package never builds") == 1, said
    assert "cell 1: error — failed environment: UvError: uv could not install" in said
    assert "cell 2: error — failed environment: not built again: see cell 1" in said
    assert "cell 3: error — failed environment: not built again: see cell 1" in said
    # nbseal run --allow-errors: the whole error once, the cause once, no rebuild.
    run = nbseal("run", "--allow-errors", str(path))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("never builds") == 1, run.stderr
    assert run.stderr.count("not built again") == 1, run.stderr
    assert (
        "nbseal run: cells 2-3 raised EnvironmentFailedError: environment 'broken' failed to "
        "build in an earlier cell; not built again (recorded; --allow-errors)"
    ) in run.stderr
    ran = nbformat.read(path, as_version=4)
    enames = [next(o for o in c.outputs if o["output_type"] == "error")["ename"] for c in ran.cells]
    assert enames == ["UvError", "EnvironmentFailedError", "EnvironmentFailedError"]
    # The short error still names the cause, for the user of a notebook far from cell 1.
    short = next(o for o in ran.cells[2].outputs if o["output_type"] == "error")
    assert "cause: Failed to build" in "\n".join(short["traceback"])


def test_a_timeout_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(PINNED), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0  # the environment is built and stored
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(300)"))
    nb.cells.append(nbformat.v4.new_code_cell("print('never')"))
    nbformat.write(nb, path)
    run = nbseal("run", "--timeout", "10", str(path))
    assert run.returncode == 1
    said = run.stderr.replace(str(tmp_path), "TMP")
    # ("within 10 s", not "10 s": a cell that took 0.10 s says so too)
    lines = [
        line for line in said.splitlines() if "within 10 s" in line or "imeout" in line.lower()
    ]
    assert lines == [
        "nbseal run: cell 2 did not finish within 10 s; raise the limit with --timeout SECONDS "
        "(outputs so far written to TMP/nb.ipynb)"
    ], run.stderr
    assert "Traceback" not in run.stderr
    verify = nbseal("verify", "--timeout", "10", str(path))
    assert verify.returncode == 2
    assert "cell 1: reproduced" in verify.stdout
    assert (
        "  cell 2 did not finish within 10 s; raise the limit with --timeout SECONDS\n"
        in verify.stdout
    )
    assert "Traceback" not in verify.stdout + verify.stderr


def test_every_build_step_is_shown_while_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("#seal env steps <- six==1.11.0 pin=2025-06-01\nprint(1)"), path)
    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    steps = [line.strip() for line in run.stderr.splitlines() if "nbseal · steps" in line]
    assert any("resolving six==1.11.0" in step for step in steps), steps
    assert any("installing" in step for step in steps), steps
    assert "built and stored" in steps[-1], steps
    # (six 1.11.0: a version no other test builds, so this one sees the build.)


def test_a_figure_s_text_beside_its_image_is_not_compared(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    plot = (
        "#seal pin 2025-06-01\n#seal env plot <- matplotlib\n"
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('up and down')"
    )
    nbformat.write(notebook(plot, "print(plt.gcf())"), path)
    assert nbseal("lock", str(path)).returncode == 0
    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    nb = nbformat.read(path, as_version=4)
    texts = [o["data"]["text/plain"] for o in nb.cells[0].outputs if "data" in o]
    assert "Text(0.5, 1.0, 'up and down')" in texts
    assert "<Figure size 640x480 with 1 Axes>" in texts
    # As an older matplotlib stored them: other sizes, other reprs.
    for output in nb.cells[0].outputs:
        if "data" not in output:
            continue
        if "image/png" in output["data"]:
            output["data"]["text/plain"] = "<Figure size 432x288 with 1 Axes>"
        else:
            output["data"]["text/plain"] = "Text(0.5,1,'up and down')"
    nb.cells[1].outputs[0]["text"] = "Figure(432x288)\n"
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert "cell 1: reproduced" in verify.stdout, verify.stdout
    # A figure printed as text, with no image in the cell, is compared.
    assert (
        "cell 2: differs — environment drift: matplotlib's figure size changed: 432x288 → 640x480"
    ) in verify.stdout, verify.stdout
    # A figure that is no longer shown is a difference, even without --compare-images.
    nb.cells[0].outputs = [o for o in nb.cells[0].outputs if "image/png" not in o.get("data", {})]
    nbformat.write(nb, path)
    assert "cell 1: differs" in nbseal("verify", str(path)).stdout


def test_a_cell_the_author_never_ran_is_left_out_as_in_the_stored_run(tmp_path: Path) -> None:
    # IPython's "Beyond Plain Python" keeps a cell left as `collections.` (to show tab
    # completion) that was never executed; running it raised, and shifted every later
    # execution count, so `_10 == Out[10]` failed where the author's run printed True.
    path = tmp_path / "nb.ipynb"
    nb = _ran(path, PINNED, "21 * 2", "len(In)")
    stored_count = nb.cells[2].outputs[0]["data"]["text/plain"]
    never_run = nbformat.v4.new_code_cell("collections.")
    switch = nbformat.v4.new_code_cell("#seal env py")  # never run either, but a directive
    nb.cells[2:2] = [never_run, switch]
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 3: skipped (never executed in the file, while later cells were" in verify.stdout
    assert "cell 4: reproduced (ran; never executed in the file, not compared)" in verify.stdout
    assert "cell 5: reproduced" in verify.stdout, stored_count
    # With no cell executed there is no stored run to follow: every cell runs.
    for cell in nb.cells:
        cell.execution_count, cell.outputs = None, []
    nbformat.write(nb, path)
    cleared = nbseal("verify", str(path))
    assert cleared.returncode == 1, cleared.stdout
    assert "cell 3: error" in cleared.stdout


def test_what_the_author_typed_at_input_is_typed_again(tmp_path: Path) -> None:
    # The classic Notebook stores the prompt and the answer in stdout; JupyterLab
    # stores the answer as a stream named stdin. A prompt with nothing recorded
    # gets end of file (EOFError) instead of a cell that waits forever.
    path = tmp_path / "nb.ipynb"
    asks = "name = input('Name? ')\nprint('hello', name)"
    nbformat.write(notebook(PINNED, asks, asks, "input('Again? ')"), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", "--allow-errors", str(path)).returncode == 0
    nb = nbformat.read(path, as_version=4)
    stream = nbformat.v4.new_output
    nb.cells[1].outputs = [stream("stream", name="stdout", text="Name? Ada\nhello Ada\n")]
    nb.cells[2].outputs = [
        stream("stream", name="stdin", text="Grace\n"),
        stream("stream", name="stdout", text="hello Grace\n"),
    ]
    nb.cells[3].outputs = []
    nbformat.write(nb, path)
    verify = nbseal("verify", "--timeout", "60", str(path))
    assert "cell 2: reproduced" in verify.stdout, verify.stdout
    assert "cell 3: reproduced" in verify.stdout, verify.stdout
    (fourth,) = [line for line in verify.stdout.splitlines() if "cell 4:" in line]
    assert fourth.strip().startswith("cell 4: error"), verify.stdout
    assert "EOFError" in fourth, verify.stdout
    # Another answer recorded than the one the cell prints: the cell differs.
    nb.cells[1].outputs = [stream("stream", name="stdout", text="Name? Ada\nhello Grace\n")]
    nbformat.write(nb, path)
    changed = nbseal("verify", "--timeout", "60", str(path))
    assert "cell 2: differs" in changed.stdout, changed.stdout


def test_the_working_directory_a_cell_prints_reproduces(tmp_path: Path) -> None:
    # Each session's kernels work in a fresh scratch folder, bound at its host
    # path: two runs print two paths, and verify compares them as one.
    path = tmp_path / "nb.ipynb"
    cells = (
        PINNED,
        "import os\nprint(os.getcwd())",
        "from pathlib import Path\nPath('x.csv').resolve()",
    )
    nbformat.write(notebook(*cells), path)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path)).returncode == 0
    printed = nbformat.read(path, as_version=4).cells[1].outputs[0]["text"]
    assert printed.rstrip().endswith("/work"), printed
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    assert "cell 3: reproduced" in verify.stdout


def test_the_author_s_folder_in_stored_outputs_is_the_working_directory(tmp_path: Path) -> None:
    # A notebook run on its author's machine printed the folder it ran in there;
    # the re-run prints its own working directory in the same places.
    folder = tmp_path / "analysis"
    folder.mkdir()
    path = folder / "nb.ipynb"
    cells = (PINNED, "import os\nprint(os.getcwd())", "print(os.path.abspath('out.csv'))")
    nb = _ran(path, *cells)
    nb.cells[1].outputs[0]["text"] = "/Users/ada/work/analysis\n"
    nb.cells[2].outputs[0]["text"] = "/Users/ada/work/analysis/out.csv\n"
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    assert "cell 3: reproduced" in verify.stdout
    # Another folder than the notebook's is a difference.
    nb.cells[2].outputs[0]["text"] = "/Users/ada/work/other/out.csv\n"
    nbformat.write(nb, path)
    assert "cell 3: differs" in nbseal("verify", str(path)).stdout


def test_where_the_author_s_packages_were_installed_does_not_count(tmp_path: Path) -> None:
    # A module's file, as a warning or a repr prints it, on the author's conda
    # environment in the stored outputs and in the store entry here.
    path = tmp_path / "nb.ipynb"
    nb = _ran(path, PINNED, "import ipykernel\nprint(ipykernel.__file__)")
    installed = "/Users/ada/miniconda3/envs/old/lib/python3.6/site-packages/"
    nb.cells[1].outputs[0]["text"] = installed + "ipykernel/__init__.py\n"
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    # Another module than the one the cell prints is a difference.
    nb.cells[1].outputs[0]["text"] = installed + "ipykernel/kernelapp.py\n"
    nbformat.write(nb, path)
    assert "cell 2: differs" in nbseal("verify", str(path)).stdout


def test_a_warning_reproduces_wherever_its_library_was_installed(tmp_path: Path) -> None:
    # pysindy's notebook warned from the author's checkout, at other line numbers.
    path = tmp_path / "nb.ipynb"
    nb = _ran(path, PINNED, "import warnings\nwarnings.warn('did not converge')")
    (output,) = nb.cells[1].outputs
    assert "UserWarning: did not converge" in output["text"], output
    message = output["text"].split(": ", 1)[1]  # the category, the message, the source line
    nb.cells[1].outputs[0]["text"] = "/home/ada/Dropbox (lab)/x/y.py:266: " + message
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    # Another message is a difference.
    other = message.replace("did not converge", "converged")
    nb.cells[1].outputs[0]["text"] = "/home/ada/x/y.py:266: " + other
    nbformat.write(nb, path)
    assert "cell 2: differs" in nbseal("verify", str(path)).stdout


def test_a_progress_bar_reproduces_as_the_author_s_frontend_stored_it(tmp_path: Path) -> None:
    # The re-run gets tqdm's updates, "\r"-separated, one stream output each;
    # JupyterLab stored the author's run as the bar's last state, at its speed.
    path = tmp_path / "nb.ipynb"
    cells = (
        "#seal pin 2025-06-01\n#seal env py <- tqdm==4.67.1",
        "import time\nfrom tqdm import tqdm\nfor _ in tqdm(range(20)):\n    time.sleep(0.02)",
    )
    nb = _ran(path, *cells)
    stored = "100%|██████████| 20/20 [00:06<00:00,  3.21it/s]\n"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=stored)]
    nbformat.write(nb, path)
    verify = nbseal("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "cell 2: reproduced" in verify.stdout
    # A bar that ended elsewhere is a difference.
    nb.cells[1].outputs[0]["text"] = stored.replace("20/20", "19/20")
    nbformat.write(nb, path)
    assert "cell 2: differs" in nbseal("verify", str(path)).stdout
