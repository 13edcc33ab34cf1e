"""Locks in the notebook, through the CLI: lock, check, rebuild, tamper, races, kills."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nbseal.notebook import LOCK_MIME
from nbseal.plan import host_platform, host_python_version
from nbseal.uv import uv_cache_dir
from tests.e2e.test_cli import nbseal, notebook

PIN = "2025-06-01"
SIX_CELL = f"#seal pin {PIN}\n#seal env py <- six\nimport six; print(six.__version__)"


def fresh_env(tmp_path: Path, name: str = "cache") -> dict[str, str]:
    """A process environment whose nbseal store is empty (the uv cache is shared)."""
    env = dict(os.environ)
    env["NBSEAL_CACHE_DIR"] = str(tmp_path / name)
    return env


def store_envs(env: dict[str, str]) -> Path:
    return Path(env["NBSEAL_CACHE_DIR"]) / "envs"


def complete_entries(env: dict[str, str]) -> list[str]:
    root = store_envs(env)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".") and (p / "nbseal-env.json").is_file()
    )


def build_dirs(env: dict[str, str]) -> list[str]:
    """Builds in progress: the store's staging folders and uv's build folders."""
    found = staging_dirs(env)
    return found + sorted(p.name for p in uv_cache_dir().glob("nbseal-build-*"))


def staging_dirs(env: dict[str, str]) -> list[str]:
    root = store_envs(env)
    return sorted(p.name for p in root.glob(".build-*")) if root.is_dir() else []


def six_version(path: Path, cell: int = 0) -> str:
    executed = nbformat.read(path, as_version=4)
    texts = [
        o.get("text", "") for o in executed.cells[cell].outputs if o["output_type"] == "stream"
    ]
    return "".join(texts).strip().splitlines()[-1]


def write(path: Path, *sources: str) -> Path:
    nbformat.write(notebook(*sources), path)
    return path


def test_lock_writes_metadata_and_rebuilds_it_from_a_cleared_store(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", SIX_CELL)
    check = nbseal("lock", "--check", str(path))
    assert check.returncode == 1
    assert "missing" in check.stdout
    assert "py" in check.stderr

    locked = nbseal("lock", str(path))
    assert locked.returncode == 0, locked.stderr
    assert re.search(r"py\s+locked", locked.stdout)
    meta = nbformat.read(path, as_version=4).metadata["nbseal"]
    lock = meta["environments"]["py"]
    assert lock["exclude_newer"] == f"{PIN}T00:00:00Z"
    assert lock["python"] == host_python_version()
    assert lock["platform"] == host_platform()
    assert 'name = "six"' in lock["pylock"]
    assert "sha256" in lock["pylock"]
    assert "default" not in meta["environments"], "the default env is not used by this notebook"
    assert nbseal("lock", "--check", str(path)).returncode == 0
    # Locking again keeps the lock (and does not rewrite the file).
    mtime = path.stat().st_mtime_ns
    again = nbseal("lock", str(path))
    assert re.search(r"py\s+kept", again.stdout)
    assert path.stat().st_mtime_ns == mtime

    env = fresh_env(tmp_path)  # another machine: nothing built, nothing resolved
    out = tmp_path / "out.ipynb"
    run = nbseal("run", str(path), "-o", str(out), env=env)
    assert run.returncode == 0, run.stderr
    assert six_version(out) == "1.17.0"
    assert complete_entries(env) == [lock["key"]], "built exactly the stored lock"
    resolutions = Path(env["NBSEAL_CACHE_DIR"]) / "envs" / ".resolutions"
    assert not resolutions.exists() or not list(resolutions.iterdir()), "nothing was re-resolved"
    installed = json.loads((store_envs(env) / lock["key"] / "nbseal-env.json").read_text())
    assert installed["lock"]["pylock"] == lock["pylock"], "same versions, URLs and hashes"
    saved = [o for o in nbformat.read(out, as_version=4).cells[0].outputs if "data" in o]
    assert saved[-1]["data"][LOCK_MIME]["lock"]["key"] == lock["key"]

    # Run again: nothing is built (the entry is the same directory, untouched).
    entry = store_envs(env) / lock["key"]
    before = entry.stat()
    again = nbseal("run", str(path), "-o", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert complete_entries(env) == [lock["key"]]
    assert (entry.stat().st_ino, entry.stat().st_ctime_ns) == (before.st_ino, before.st_ctime_ns)
    assert staging_dirs(env) == []


def test_a_stale_lock_is_reported_and_not_used(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", SIX_CELL)
    assert nbseal("lock", str(path)).returncode == 0
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("<- six", "<- six==1.16.0")
    nbformat.write(nb, path)

    check = nbseal("lock", "--check", str(path))
    assert check.returncode == 1
    assert re.search(r"py\s+stale\s+requirements changed", check.stdout)

    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    executed = nbformat.read(path, as_version=4)
    printed = "".join(o.get("text", "") for o in executed.cells[0].outputs)
    assert "the lock stored in this notebook for 'py' is stale" in printed
    assert six_version(path) == "1.16.0", "the declared spec wins over the stale lock"

    relock = nbseal("lock", str(path))
    assert re.search(r"py\s+locked", relock.stdout), relock.stdout
    assert nbseal("lock", "--check", str(path)).returncode == 0


def test_a_tampered_hash_fails_cleanly_and_stores_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "nb.ipynb", SIX_CELL)
    assert nbseal("lock", str(path)).returncode == 0
    nb = nbformat.read(path, as_version=4)
    lock = nb.metadata["nbseal"]["environments"]["py"]
    # Tamper every artifact hash of six (its sdist and its wheel).
    start = lock["pylock"].index('name = "six"')
    end = lock["pylock"].index("[[packages]]", start)
    block = lock["pylock"][start:end]
    tampered = re.sub(r'sha256 = "[0-9a-f]{64}"', 'sha256 = "' + "0" * 64 + '"', block)
    assert tampered != block
    lock["pylock"] = lock["pylock"][:start] + tampered + lock["pylock"][end:]
    nbformat.write(nb, path)

    env = fresh_env(tmp_path)
    run = nbseal("run", str(path), env=env)
    assert run.returncode == 1
    assert "BuildError" in run.stderr or "UvError" in run.stderr, run.stderr
    assert "hash" in run.stderr.lower()
    assert complete_entries(env) == []
    assert staging_dirs(env) == []


def test_two_processes_building_the_same_environment_share_one_entry(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    paths = [write(tmp_path / f"nb{i}.ipynb", SIX_CELL) for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nbseal", "run", str(p)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [six_version(p) for p in paths] == ["1.17.0", "1.17.0"]
    assert len(complete_entries(env)) == 1
    assert staging_dirs(env) == []


def test_a_build_killed_halfway_leaves_no_entry(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    path = write(tmp_path / "nb.ipynb", SIX_CELL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbseal", "run", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not build_dirs(env) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert build_dirs(env), "the build never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert complete_entries(env) == [], "a killed build must not look complete"

    run = nbseal("run", str(path), env=env)
    assert run.returncode == 0, run.stderr
    assert six_version(path) == "1.17.0"
    assert len(complete_entries(env)) == 1
    assert staging_dirs(env) == []


JUV_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"jupyter": {"source_hidden": True}},
            "outputs": [],
            "source": [
                "# /// script\n",
                '# requires-python = ">=3.11"\n',
                "# dependencies = [\n",
                '#     "six==1.16.0",\n',
                "# ]\n",
                "#\n",
                "# [tool.uv]\n",
                '# exclude-newer = "2025-06-01T00:00:00Z"\n',
                "# ///",
            ],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["import six\n", "print(six.__version__)"],
        },
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_a_juv_style_notebook_runs_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "juv.ipynb"
    path.write_text(json.dumps(JUV_NOTEBOOK))
    run = nbseal("run", str(path))
    assert run.returncode == 0, run.stderr
    assert six_version(path, cell=1) == "1.16.0"
    assert nbseal("lock", str(path)).returncode == 0
    locks = nbformat.read(path, as_version=4).metadata["nbseal"]["environments"]
    assert list(locks) == ["default"]
    assert locks["default"]["exclude_newer"] == "2025-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# /// script\n# requires-python = '>=3.99'\n# ///", "requires Python >=3.99"),
        ("#seal env py <- six pin=2025-13-01", "is not a date"),
    ],
)
def test_lock_rejects_bad_declarations_with_the_cell_and_line(
    tmp_path: Path, source: str, message: str
) -> None:
    path = write(tmp_path / "nb.ipynb", "x = 1", source)
    before = path.read_bytes()
    proc = nbseal("lock", str(path))
    assert proc.returncode == 2
    assert "cell 2, line" in proc.stderr
    assert message in proc.stderr
    assert path.read_bytes() == before


def _kernel_of_py(kc: object, timeout: float = 60) -> str:
    """The ``kernel`` column of environment py in ``#seal describe`` once it has one."""
    from tests.kernel.helpers import execute

    deadline = time.monotonic() + timeout
    while True:
        rows = execute(kc, "#seal describe").of_type("display_data")[0]["content"]["data"]
        kernel = {r["environment"].split()[0]: r["kernel"] for r in rows[DESCRIBE_MIME]}.get("py")
        if kernel not in (None, "not started") or time.monotonic() > deadline:
            return str(kernel)
        time.sleep(0.5)


DESCRIBE_MIME = "application/vnd.nbseal.describe+json"


def test_a_locked_and_stored_first_environment_starts_with_the_kernel(tmp_path: Path) -> None:
    """The first code cell's environment starts before that cell runs if nothing must be built."""
    from jupyter_client.manager import KernelManager

    path = write(tmp_path / "nb.ipynb", SIX_CELL)
    unlocked = write(tmp_path / "unlocked.ipynb", SIX_CELL)
    assert nbseal("lock", str(path)).returncode == 0
    assert nbseal("run", str(path), "-o", str(tmp_path / "out.ipynb")).returncode == 0  # stored
    for notebook_path, expected in ((path, "python3"), (unlocked, None)):
        km = KernelManager(kernel_name="nbseal")
        km.start_kernel(
            cwd=str(tmp_path), env={**os.environ, "JPY_SESSION_NAME": notebook_path.name}
        )
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            # No cell of py has run: describe lists it only if it was pre-started.
            started = _kernel_of_py(kc, timeout=60 if expected else 5)
            assert started == str(expected)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
