"""The package as users get it: an sdist and a wheel PyPI accepts, used without a checkout."""

from __future__ import annotations

import os
import re
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


def _readme_first_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the README's quick start has a bash block"
    return block.group(1).strip().splitlines()[0]


def test_the_readmes_first_command_as_written(tmp_path: Path) -> None:
    """The quick start's first line, run by bash in a copy of the checkout, in a fresh venv."""
    command = _readme_first_command()
    checkout = tmp_path / "nbseal"
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    example = checkout / "examples" / "quickstart.ipynb"
    stored = nbformat.read(example, as_version=4)
    for cell in stored.cells:  # the run must write the outputs back itself
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(stored, example)

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["VIRTUAL_ENV"] = str(venv)  # what `source venv/bin/activate` sets
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["PIP_QUIET"] = "1"
    _run("bash", "-euo", "pipefail", "-c", command, cwd=checkout, env=env)

    assert (venv / "bin" / "nbseal").exists(), "pip installed nbseal into the venv"
    executed = nbformat.read(example, as_version=4)
    results = [o for c in executed.cells for o in c.get("outputs", []) if "data" in o]
    assert any(o["data"].get("text/plain") == "285" for o in results), executed.cells
