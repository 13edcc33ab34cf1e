"""Locks that travel (issue 19): locked under one CPython 3.11.x, verified under another.

This machine has two: the one nbseal runs on (pyenv's 3.11.7) and Debian's
``/usr/bin/python3`` (3.11.2), which ``NBSEAL_PYTHON`` makes nbseal build with.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbseal.backends.interpreters import set_interpreter_provider
from nbseal.backends.uv import UvBackend
from nbseal.directives import parse_cell
from nbseal.environments import realize
from nbseal.errors import BuildError
from nbseal.notebook import metadata_locks
from nbseal.plan import EnvironmentSpec, NotebookState
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore
from tests.e2e.test_cli import nbseal
from tests.e2e.test_python_auto import StandIn

DEBIAN_PYTHON = "/usr/bin/python3"


def _version(python: str) -> str:
    script = "import platform; print(platform.python_version())"
    return subprocess.run([python, "-c", script], capture_output=True, text=True).stdout.strip()


OTHER = _version(DEBIAN_PYTHON) if Path(DEBIAN_PYTHON).exists() else ""
pytestmark = [
    pytest.mark.usefixtures("default_env"),
    pytest.mark.skipif(
        OTHER[:5] != platform.python_version()[:5] or platform.python_version() == OTHER,
        reason=f"needs a second CPython {platform.python_version()[:4]}.x at {DEBIAN_PYTHON}",
    ),
]

CELLS = (
    "#seal pin {pin}\n#seal env py <- six attrs\nimport six, attr",
    "print(six.__version__, attr.__version__)",
    "import sys\nprint(sys.version_info[:2])",
)
# Not compared: which interpreter and which versions the kernel really has.
PROBE = (
    "import platform, importlib.metadata as m\n"
    "print(platform.python_version(), m.version('six'), m.version('attrs'))"
)


def _env(python: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NBSEAL_PYTHON", None)
    if python is not None:
        env["NBSEAL_PYTHON"] = python
    return env


def _notebook(path: Path, pin: str = "2025-06-01") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c.format(pin=pin)) for c in CELLS]
    nbformat.write(notebook, path)
    return path


def _probe(path: Path, env: dict[str, str], tmp_path: Path) -> list[str]:
    """What the kernel reports, run as a copy with one more cell (the lock is unchanged)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    probe = tmp_path / f"probe-{len(list(tmp_path.iterdir()))}.ipynb"
    nbformat.write(notebook, probe)
    proc = nbseal("run", str(probe), env=env)
    assert proc.returncode == 0, proc.stderr
    return str(nbformat.read(probe, as_version=4).cells[-1].outputs[0]["text"]).split()


@pytest.mark.parametrize(
    ("locked_with", "verified_with", "pin"),
    # Two pins: the store remembers a resolution per series, and each is made here.
    [(None, DEBIAN_PYTHON, "2025-06-01"), (DEBIAN_PYTHON, None, "2025-05-01")],
    ids=["locked-here-verified-on-debian", "locked-on-debian-verified-here"],
)
def test_a_lock_made_on_one_patch_release_verifies_on_another(
    tmp_path: Path, locked_with: str | None, verified_with: str | None, pin: str
) -> None:
    path = _notebook(tmp_path / "nb.ipynb", pin)
    maker, checker = _env(locked_with), _env(verified_with)
    assert nbseal("lock", str(path), env=maker).returncode == 0
    proc = nbseal("run", str(path), env=maker)
    assert proc.returncode == 0, proc.stderr
    lock = metadata_locks(nbformat.read(path, as_version=4))["py"]
    made, other = (OTHER, platform.python_version())
    if locked_with is None:
        made, other = other, made
    assert lock.python == made
    assert lock.serves == made[:4]

    check = nbseal("lock", "--check", str(path), env=checker)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all 1 locks are current" in check.stdout
    verified = nbseal("verify", str(path), "--json", env=checker)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)[0]
    assert [c["status"] for c in report["cells"]].count("reproduced") == 3
    note = f"py: built with {other}, locked with {made}: patch release differs"
    assert report["interpreters"] == [note], "told and counted, not refused"

    # The same versions on both interpreters, each in its own store entry.
    here = _probe(path, maker, tmp_path)
    there = _probe(path, checker, tmp_path)
    assert here[0] == made
    assert there[0] == other
    assert here[1:] == there[1:] == [lock.version_of("six"), lock.version_of("attrs")]
    entries = [p for p, stored in EnvironmentStore().locks() if stored.key == lock.key]
    assert len(entries) == 2, "one tree per interpreter, the same lock"


def test_another_series_is_stale_with_the_way_out(tmp_path: Path) -> None:
    path = _notebook(tmp_path / "nb.ipynb")
    notebook = nbformat.read(path, as_version=4)
    assert nbseal("lock", str(path)).returncode == 0
    notebook = nbformat.read(path, as_version=4)
    entry = notebook.metadata["nbseal"]["environments"]["py"]
    entry.update(python="3.10.14", serves="3.10")
    nbformat.write(notebook, path)
    check = nbseal("lock", "--check", str(path))
    assert check.returncode == 1
    assert f"locked for Python 3.10, this is Python {platform.python_version()}" in check.stdout
    assert "`nbseal lock`" in check.stdout


def test_an_older_lock_is_used_and_upgraded_without_a_re_resolve(tmp_path: Path) -> None:
    """A lock of the format before (one patch release, one platform) still runs on
    another patch release, and `nbseal lock` upgrades it, versions unchanged."""
    path = _notebook(tmp_path / "nb.ipynb")
    assert nbseal("lock", str(path)).returncode == 0
    notebook = nbformat.read(path, as_version=4)
    entry = notebook.metadata["nbseal"]["environments"]["py"]
    entry.pop("serves")
    entry["pylock"] = entry["pylock"].replace(
        'requires-python = ">=3.11"', f'requires-python = ">={platform.python_version()}"'
    )
    nbformat.write(notebook, path)
    old = metadata_locks(nbformat.read(path, as_version=4))["py"]
    assert old.serves == ""

    proc = nbseal("run", str(path), env=_env(DEBIAN_PYTHON))
    assert proc.returncode == 0, proc.stderr
    locked = nbseal("lock", str(path))
    assert "upgraded" in locked.stdout
    new = metadata_locks(nbformat.read(path, as_version=4))["py"]
    assert new.serves == platform.python_version()[:4]
    assert new.packages() == old.packages()
    assert 'requires-python = ">=3.11"' in new.pylock
    assert UvBackend().upgraded(new) is None
    assert sys.version_info[:2] == (3, 11)


def _exact_spec(version: str) -> EnvironmentSpec:
    state = NotebookState()
    cell = f"#seal pin 2025-06-01\n#seal env py <- six python={version}"
    for directive in parse_cell(cell).directives:
        state.apply(directive)
    return state.environments["py"].spec()


def test_python_x_y_z_asks_for_that_release_through_uv_s_managed_pythons(tmp_path: Path) -> None:
    """The seam where uv downloads an interpreter is a stand-in (no download here);
    the interpreter it hands over is real, and so are the resolution and the build."""
    stand_in = StandIn(DEBIAN_PYTHON)
    set_interpreter_provider(stand_in)
    try:
        spec = _exact_spec(OTHER)
        built = asyncio.run(realize(spec, EnvironmentStore(), Progress("py")))
    finally:
        set_interpreter_provider(None)
    assert stand_in.asked[0] == OTHER
    assert built.lock.serves == OTHER
    assert built.lock.python == OTHER
    assert 'requires-python = ">=' + OTHER in built.lock.pylock
    assert _version(str(built.path / "bin" / "python")) == OTHER


def test_python_x_y_z_says_what_to_install_when_uv_cannot_get_it(tmp_path: Path) -> None:
    set_interpreter_provider(StandIn(None, "No download found for request: cpython-3.11.99"))
    try:
        with pytest.raises(BuildError) as caught:
            asyncio.run(realize(_exact_spec("3.11.99"), EnvironmentStore(), Progress("py")))
    finally:
        set_interpreter_provider(None)
    assert "needs Python 3.11.99" in caught.value.message
    assert "No download found" in caught.value.context
    assert "uv python install 3.11.99" in caught.value.hint
