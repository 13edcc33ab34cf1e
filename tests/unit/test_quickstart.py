"""The README's two commands, and that CI runs the second (issue 20).

What the second command installs cannot be tried here (the machine has it
all already); this reads the script for it, and CI proves the rest.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

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
