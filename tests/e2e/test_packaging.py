"""The package as users get it: an sdist and a wheel PyPI accepts, used without a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

import nbseal

pytestmark = pytest.mark.usefixtures("default_env")

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_a_wheel_in_a_clean_venv_runs_an_example(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("nbseal-*.whl"))
    sdist = next(dist.glob("nbseal-*.tar.gz"))
    assert wheel.name == f"nbseal-{nbseal.__version__}-py3-none-any.whl"
    assert "PASSED" in _run(sys.executable, "-m", "twine", "check", wheel, sdist, cwd=tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "nbseal/adopt/pipreqs_mapping.txt" in names  # data files travel with the code
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path, env=env)
    # Nothing of the checkout: the example is copied out, the venv's own nbseal runs it.
    example = tmp_path / "quickstart.ipynb"
    shutil.copy(ROOT / "examples" / "quickstart.ipynb", example)
    version = _run(venv / "bin" / "nbseal", "--version", cwd=tmp_path, env=env)
    assert version.strip() == f"nbseal {nbseal.__version__}"
    out = tmp_path / "out.ipynb"
    _run(venv / "bin" / "nbseal", "run", example, "-o", out, cwd=tmp_path, env=env)
    executed = nbformat.read(out, as_version=4)
    results = [o for c in executed.cells for o in c.get("outputs", []) if "data" in o]
    assert any(o["data"].get("text/plain") == "285" for o in results)
