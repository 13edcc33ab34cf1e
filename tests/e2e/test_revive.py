"""Old pins on today's Python, with real uv against real PyPI (issue 16, item 2).

numpy pinned in 2018 has no wheel for CPython 3.11: it falls forward to its
first release with one, which the lock records and ``#seal describe`` shows;
``build=source`` keeps the pinned version; a pin before 2019-02 still builds
a pure-Python sdist, since build tools are not held back by the pin.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from nbseal._toml import tomllib
from nbseal.notebook import LOCK_MIME
from nbseal.uv import uv_binary
from tests.e2e.test_cli import nbseal, notebook
from tests.e2e.test_locks import fresh_env, write

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64",
    reason="the versions asserted are those of CPython 3.11 on x86-64 Linux",
)

NUMPY_2018 = (
    "#seal pin 2018-06-01\n#seal env py <- numpy{options}\nimport numpy; print(numpy.__version__)"
)
NOTE = "numpy 1.14.3 → 1.23.2: first wheel for CPython 3.11"


def py_lock(path: Path) -> dict[str, Any]:
    lock: dict[str, Any] = nbformat.read(path, as_version=4).metadata["nbseal"]["environments"][
        "py"
    ]
    return lock


def package(lock: dict[str, Any], name: str) -> dict[str, Any]:
    entries = tomllib.loads(lock["pylock"])["packages"]
    found: dict[str, Any] = next(p for p in entries if p["name"] == name)
    return found


def test_numpy_pinned_in_2018_falls_forward_to_its_first_wheel_and_the_lock_keeps(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "nb.ipynb", NUMPY_2018.format(options=""))
    locked = nbseal("lock", str(path))
    assert locked.returncode == 0, locked.stderr
    assert NOTE in locked.stdout
    assert NOTE in locked.stderr, "the resolution's progress says it too"

    lock = py_lock(path)
    numpy = package(lock, "numpy")
    assert numpy["version"] == "1.23.2"
    assert "sdist" not in numpy, "nothing of numpy is built from source"
    assert any("cp311" in w["url"] for w in numpy["wheels"])
    assert {
        "name": "numpy",
        "pinned": "1.14.3",
        "chosen": "1.23.2",
        "reason": "first wheel for CPython 3.11",
    } in lock["fall_forwards"]
    assert lock["exclude_newer"] == "2018-06-01T00:00:00Z", "the pin itself is unchanged"
    # The kernel nbseal adds is from after CPython 3.11, with what it needs.
    assert int(package(lock, "ipykernel")["version"].split(".")[0]) >= 6

    check = nbseal("lock", "--check", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
    mtime = path.stat().st_mtime_ns
    again = nbseal("lock", str(path))
    assert re.search(r"py\s+kept", again.stdout)
    assert path.stat().st_mtime_ns == mtime

    # The per-package cutoffs travel with the lock, and into an exported script.
    assert lock["exclude_newer_package"]["numpy"] == "2022-08-14T00:17:34Z"
    script = tmp_path / "nb.py"
    exported = nbseal("export", str(path), "--to", "script", "-o", str(script))
    assert exported.returncode == 0, exported.stderr
    assert '"numpy" = "2022-08-14T00:17:34Z"' in script.read_text()
    uv_lock = subprocess.run(
        [uv_binary(), "lock", "--script", str(script), "--python", sys.executable],
        capture_output=True,
        text=True,
        check=False,
    )
    assert uv_lock.returncode == 0, uv_lock.stderr
    assert 'name = "numpy"\nversion = "1.23.2"' in (tmp_path / "nb.py.lock").read_text()

    # Resolving afresh elsewhere gives the same lock: no drift, no loop.
    other = write(tmp_path / "other.ipynb", NUMPY_2018.format(options=""))
    assert nbseal("lock", str(other), env=fresh_env(tmp_path)).returncode == 0
    assert py_lock(other)["key"] == lock["key"]
    assert py_lock(other)["fall_forwards"] == lock["fall_forwards"]


def test_build_source_keeps_the_pinned_numpy_and_says_it_compiles(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", NUMPY_2018.format(options=" build=source"))
    locked = nbseal("lock", str(path))
    assert locked.returncode == 0, locked.stderr
    lock = py_lock(path)
    numpy = package(lock, "numpy")
    assert numpy["version"] == "1.14.3"
    assert "sdist" in numpy
    assert "wheels" not in numpy
    assert lock["build"] == "source"
    assert "numpy 1.14.3: built from source (build=source" in locked.stdout
    assert nbseal("lock", "--check", str(path)).returncode == 0

    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(" build=source", "")
    nbformat.write(nb, path)
    check = nbseal("lock", "--check", str(path))
    assert check.returncode == 1
    assert "build mode changed" in check.stdout


def test_a_pin_before_2019_02_still_builds_a_pure_python_sdist(tmp_path: Path) -> None:
    """docopt 0.6.2 (2014) was only ever an sdist; setuptools>=40.8 came out 2019-02-05."""
    source = (
        "#seal pin 2019-01-15\n#seal env py <- docopt==0.6.2\n"
        "import docopt; print(docopt.__version__)"
    )
    path = write(tmp_path / "nb.ipynb", source)
    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    printed = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert printed.strip() == "0.6.2"
    summary = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "docopt 0.6.2: built from source: no release has a wheel for CPython 3.11" in summary
    # The lock the kernel put beside its summary, saved with the notebook.
    lock = next(o["data"][LOCK_MIME]["lock"] for o in outputs if LOCK_MIME in o.get("data", {}))
    assert "sdist" in package(lock, "docopt"), "docopt is built from its sdist"
    pylock = tomllib.loads(lock["pylock"])
    assert "setuptools" not in {p["name"] for p in pylock["packages"]}, "only to build"


def test_describe_shows_the_fall_forward_through_a_real_kernel(tmp_path: Path) -> None:
    from tests.kernel.helpers import execute, running_kernel

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with running_kernel() as (_, kc):
            ran = execute(kc, NUMPY_2018.format(options=""), timeout=600)
            assert ran.status == "ok", ran.reply
            assert ran.stdout.strip() == "1.23.2"
            shown = [
                m["content"]["data"].get("text/plain", "")
                for m in ran.outputs
                if "data" in m["content"]
            ]
            assert any(NOTE in text for text in shown), shown

            described = execute(kc, "#seal describe")
            data = described.of_type("display_data")[0]["content"]["data"]
            table = data["application/vnd.nbseal.describe+json"]
            rows = {r["environment"].split()[0]: r for r in table}
            assert NOTE in rows["py"]["not as pinned"]
            assert f"not as pinned: {NOTE}" in data["text/plain"]
            assert "not as pinned" in data["text/html"]
            assert "not as pinned" not in rows.get("default", {}), "the default env kept its pin"
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)


__all__ = ["notebook"]


def test_a_build_tool_needed_at_run_time_keeps_the_pins_version(tmp_path: Path) -> None:
    """ipython 6.4 imports pkg_resources, which setuptools dropped in 2025 (81.0)."""
    source = "#seal pin 2018-06-01\n#seal env py <- ipython==6.4.0 kernel=python3\nimport IPython"
    path = write(tmp_path / "nb.ipynb", source)
    locked = nbseal("lock", str(path))
    assert locked.returncode == 0, locked.stderr
    lock = py_lock(path)
    assert package(lock, "setuptools")["version"] == "39.2.0", "as the pin has it, at run time"
    assert "setuptools" not in {f["name"] for f in lock.get("fall_forwards", [])}
    # While builds get a recent one: the cutoff recorded for setuptools is not the pin.
    assert lock["exclude_newer_package"]["setuptools"] > lock["exclude_newer"]
