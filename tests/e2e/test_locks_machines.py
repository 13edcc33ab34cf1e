"""One lock for Linux x86_64 and aarch64 (issue 19), with real uv against real PyPI.

No aarch64 machine runs these tests: what they show on x86_64 is that the
lock lists each aarch64 wheel with its SHA-256, that uv installs the lock
for ``aarch64-unknown-linux-gnu`` (into a folder: ``--target``, hashes
checked, nothing compiled) and that the files it unpacks are aarch64 code,
that uv resolving for aarch64 picks exactly the locked versions, and that
the host installs what it installed before.
"""

from __future__ import annotations

import asyncio
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name, parse_wheel_filename

from nbseal._toml import tomllib
from nbseal.lock import Lock
from nbseal.notebook import metadata_locks
from nbseal.plan import host_platform
from nbseal.uv import compile_pylock, uv_binary
from tests.e2e.test_cli import nbseal
from tests.e2e.test_locks import fresh_env, write

MACHINES = {"linux-x86_64": "x86_64", "linux-aarch64": "aarch64"}
HERE = MACHINES.get(host_platform(), "")
OTHER = "aarch64" if HERE == "x86_64" else "x86_64"
pytestmark = pytest.mark.skipif(not HERE, reason="nbseal's locks serve Linux x86_64 and aarch64")

VERSIONS = (
    "import json, importlib.metadata as m\n"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)
EM_AARCH64, EM_X86_64 = 183, 62


def _lock_of(path: Path) -> Lock:
    return metadata_locks(nbformat.read(path, as_version=4))["py"]


def _entries(lock: Lock) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tomllib.loads(lock.pylock)["packages"]
    return found


def _versions_on(lock: Lock, machine: str) -> dict[str, str]:
    """What the lock installs on ``machine`` (its markers evaluated there)."""
    env = {"platform_machine": machine, "sys_platform": "linux"}
    return {
        canonicalize_name(p["name"]): p["version"]
        for p in _entries(lock)
        if not p.get("marker") or Marker(p["marker"]).evaluate(env)
    }


def _installable(package: dict[str, Any], machine: str) -> list[dict[str, Any]]:
    """The wheels of ``package`` that a glibc Linux ``machine`` installs."""
    platforms = re.compile(rf"any|(many)?linux\w*_{machine}")
    found = []
    for wheel in package.get("wheels", []):
        _, _, _, tags = parse_wheel_filename(wheel["url"].rsplit("/", 1)[-1])
        if any(platforms.fullmatch(t.platform) for t in tags):
            found.append(wheel)
    return found


# Packages of these tests' locks whose releases have manylinux wheels for both machines.
BINARY = ("numpy", "pyzmq", "psutil", "tornado")


def _install_for(lock: Lock, machine: str, tmp_path: Path) -> dict[str, str]:
    """Install the lock as uv does for ``machine``: into a folder, hashes checked, no builds."""
    folder = tmp_path / f"pylock-{machine}"
    folder.mkdir()
    (folder / "pylock.toml").write_text(lock.pylock)
    target = folder / "site"
    proc = subprocess.run(
        [
            uv_binary(),
            "pip",
            "sync",
            str(folder / "pylock.toml"),
            "--preview-features",
            "pylock",
            "--python",
            sys.executable,
            "--python-platform",
            f"{machine}-unknown-linux-gnu",
            "--target",
            str(target),
            "--require-hashes",
            "--no-build",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    installed = {}
    for info in target.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        installed[canonicalize_name(name)] = version
    numpy_core = [*target.glob("numpy/_core/_multiarray_umath.*.so")]
    numpy_core += target.glob("numpy/core/_multiarray_umath.*.so")  # numpy 1.x
    header = numpy_core[0].read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    wanted = EM_AARCH64 if machine == "aarch64" else EM_X86_64
    assert int.from_bytes(header[18:20], "little") == wanted, "code for that machine"
    return installed


def _check_serves_both(lock: Lock, tmp_path: Path) -> None:
    """Each machine's wheels of each package, with their SHA-256; installed as uv does there."""
    assert set(lock.platforms) == {"linux-x86_64", "linux-aarch64"}
    for machine in ("x86_64", "aarch64"):
        wanted = _versions_on(lock, machine)
        for package in _entries(lock):
            name = canonicalize_name(package["name"])
            if wanted.get(name) != package["version"]:
                continue  # another machine's release of it
            wheels = _installable(package, machine)
            assert wheels, f"{name} {package['version']}: no wheel for {machine}"
            assert all(re.fullmatch(r"[0-9a-f]{64}", w["hashes"]["sha256"]) for w in wheels)
            if name in BINARY:
                assert any("manylinux" in w["url"] and machine in w["url"] for w in wheels), name
        assert _install_for(lock, machine, tmp_path) == wanted


def test_a_lock_serves_x86_64_and_aarch64_and_the_host_installs_as_before(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "nb.ipynb",
        "#seal pin 2025-06-01\n#seal env py <- numpy six\nimport numpy, six",
        VERSIONS,
    )
    env = fresh_env(tmp_path)  # resolved here, not taken from the store's resolutions
    locked = nbseal("lock", str(path), env=env)
    assert locked.returncode == 0, locked.stderr
    assert "on linux-" in locked.stdout
    assert re.search(r"Python 3\.\d+ on linux-\w+ \+ linux-\w+ \(key", locked.stdout)
    assert f"resolving for Linux {OTHER} too" in locked.stderr
    lock = _lock_of(path)
    _check_serves_both(lock, tmp_path)
    # Pinned in 2025, both machines get the same releases: no marker tells them apart.
    assert _versions_on(lock, "x86_64") == _versions_on(lock, "aarch64")
    assert not any("platform_machine" in p.get("marker", "") for p in _entries(lock))

    # uv resolving for the other machine, from the lock's own requirements and
    # cutoffs, picks exactly the locked releases.
    def resolve(machine: str | None) -> dict[str, str]:
        text = asyncio.run(
            compile_pylock(
                lock.requirements,
                python=sys.executable,
                exclude_newer=lock.exclude_newer,
                workdir=tmp_path / f"resolve-{machine}",
                exclude_newer_packages=dict(lock.exclude_newer_package),
                serves=lock.serves,
                python_platform=f"{machine}-unknown-linux-gnu" if machine else None,
            )
        )
        packages = tomllib.loads(text)["packages"]
        return {canonicalize_name(p["name"]): p["version"] for p in packages}

    assert resolve(OTHER) == _versions_on(lock, OTHER)
    # The host's resolution alone (the lock before it served two machines) holds
    # what the lock installs here, and the kernel runs on exactly that.
    before = resolve(None)
    assert before == {canonicalize_name(p.name): p.version for p in lock.packages()}
    ran = tmp_path / "ran.ipynb"
    proc = nbseal("run", str(path), "-o", str(ran), env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(nbformat.read(ran, as_version=4).cells[1].outputs[0]["text"])
    installed = {canonicalize_name(k): v for k, v in seen.items()}
    assert {k: installed[k] for k in before} == before
    assert not set(installed) - set(before) - {"pip"}, "nothing beyond the lock"


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64",
    reason="the versions asserted are those of CPython 3.11 on x86-64 Linux",
)
def test_a_revived_lock_falls_forward_on_aarch64_alone_where_only_aarch64_lacks_a_wheel(
    tmp_path: Path,
) -> None:
    """Pinned in 2018: numpy falls forward to 1.23.2 (its first cp311 wheel) on both;
    psutil 5.9.4, the host's first cp311 wheel, never had an aarch64 wheel, so aarch64
    alone takes psutil's first release that has one, behind a marker, and says so."""
    path = write(
        tmp_path / "nb.ipynb",
        "#seal pin 2018-06-01\n#seal env py <- numpy\nimport numpy; print(numpy.__version__)",
    )
    locked = nbseal("lock", str(path), env=fresh_env(tmp_path))
    assert locked.returncode == 0, locked.stderr
    assert "numpy 1.14.3 → 1.23.2: first wheel for CPython 3.11" in locked.stdout
    assert "psutil 6.0.0 on aarch64 (5.9.4 on x86_64)" in locked.stderr
    lock = _lock_of(path)
    assert _versions_on(lock, "x86_64")["numpy"] == _versions_on(lock, "aarch64")["numpy"]
    assert _versions_on(lock, "x86_64")["psutil"] == "5.9.4"
    assert _versions_on(lock, "aarch64")["psutil"] == "6.0.0"
    assert {k: v for k, v in _versions_on(lock, "x86_64").items() if k != "psutil"} == {
        k: v for k, v in _versions_on(lock, "aarch64").items() if k != "psutil"
    }
    assert sorted(p["marker"] for p in _entries(lock) if p["name"] == "psutil") == [
        "platform_machine == 'aarch64'",
        "platform_machine == 'x86_64'",
    ]
    _check_serves_both(lock, tmp_path)
    assert nbseal("lock", "--check", str(path)).returncode == 0
    # Requirements with hashes keep each machine's release apart, as pip reads them.
    exported = nbseal("export", str(path), "--to", "requirements")
    assert exported.returncode == 0, exported.stderr
    assert "psutil==6.0.0 ; platform_machine == 'aarch64' \\\n    --hash=sha256:" in exported.stdout
    assert "psutil==5.9.4 ; platform_machine == 'x86_64' \\\n    --hash=sha256:" in exported.stdout
