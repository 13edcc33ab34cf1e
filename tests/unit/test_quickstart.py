"""The README's two commands, and that CI runs the second (issue 20).

What the second command installs as root cannot be tried here (the machine
has it all already); this reads the script for it, and CI proves the rest.
What it does for a regular user on a machine that lacks the packages is run
for real: as the user nobody, with a PATH that holds none of them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the quick start has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    install, test = _quick_start_commands()
    assert "nbseal run examples/" in install
    assert shlex.split(test) == ["bash", "scripts/test"]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "bash scripts/test" in ci


def test_the_second_command_installs_what_the_tests_use() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    packages = re.search(r"^PACKAGES=\((.*)\)$", script, re.M)
    assert packages is not None
    wanted = set(packages.group(1).split())
    # Debian trees (tests/debian), offline .deb indices, the browser tests, seccomp.
    assert {"mmdebstrap", "uidmap", "dpkg-dev", "chromium", "libseccomp2"} <= wanted
    assert 'apt-get install -y -qq "${PACKAGES[@]}"' in script
    # As a regular user it says what is missing and how to install it, and stops.
    assert "these system packages are missing" in script
    assert "pip install -q -e '.[test]'" in script
    assert re.search(r"^pytest .* tests$", script, re.M)
    assert re.search(r"^mypy$", script, re.M)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the user nobody needs root")
def test_a_regular_user_without_the_packages_is_told_what_to_install() -> None:
    with tempfile.TemporaryDirectory() as top:  # pytest's own folder is root's alone
        _run_as_nobody_without_packages(Path(top))


def _run_as_nobody_without_packages(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "test", checkout / "scripts" / "test")
    tools = tmp_path / "bin"  # what a bare machine has: a shell and coreutils, no apt packages
    tools.mkdir()
    for tool in ("bash", "id", "dirname", "grep", "cat", "ldconfig"):
        found = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
        assert found, tool
        (tools / tool).symlink_to(found)
    tmp_path.chmod(0o755)
    proc = _as_nobody(
        [str(tools / "bash"), str(checkout / "scripts" / "test")],
        {"PATH": str(tools), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "these system packages are missing: mmdebstrap uidmap dpkg-dev chromium" in proc.stderr
    assert "apt-get install mmdebstrap" in proc.stderr
    assert not (checkout / ".venv").exists(), "it stops before installing anything"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the user nobody needs root")
def test_a_regular_user_with_the_packages_is_not_told_to_install_them() -> None:
    # A regular user's PATH on Debian has no /sbin, where ldconfig lives: the
    # library check must find libseccomp2 all the same. scripts/test installs
    # the packages before the suite runs, so they are here.
    proc = _as_nobody(
        ["bash", str(ROOT / "scripts" / "test"), "--check"],
        {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "the system packages the tests use are installed" in proc.stdout


def _as_nobody(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``argv`` run as the user nobody (uid 65534, no groups) with only ``env``."""
    setpriv = shutil.which("setpriv") or "setpriv"
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
