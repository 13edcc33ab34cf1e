"""nbseal.sandbox.userns: a tool runs as the root of a namespace of unprivileged ids.

These run as root: they map ids no user of the machine is granted (so only
this test's files get them), which only root may. A regular user's path
(newuidmap/newgidmap) is tested by tests/debian/test_hostile_build.py and
tests/debian/test_unprivileged.py, which build as a created user.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbseal.sandbox.userns import userns_command

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="maps ids only root may grant")

BASE = 2_000_000  # ids no user of this machine has: only this test's files get them
SYSCTL = Path("/proc/sys/kernel/printk_ratelimit_burst")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*userns_command(BASE, BASE, 65536), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_is_root_inside_and_unprivileged_ids_outside(open_dir: Path) -> None:
    theirs = open_dir / "theirs"
    theirs.mkdir()
    os.chown(theirs, BASE, BASE)
    done = run("sh", "-c", f'id -u; cat /proc/self/uid_map; : > "{theirs}/made"; exit 3')
    assert done.returncode == 3, done.stderr  # the command's status comes back
    uid, mapping = done.stdout.splitlines()
    assert uid == "0"
    assert mapping.split() == ["0", str(BASE), "65536"]
    made = (theirs / "made").stat()
    assert (made.st_uid, made.st_gid) == (BASE, BASE)


def test_the_namespace_root_cannot_write_what_host_root_owns(open_dir: Path) -> None:
    hosts = open_dir / "hosts"
    hosts.mkdir(mode=0o755)
    value = SYSCTL.read_text().strip()
    # Controls: the same writes succeed as host root.
    (hosts / "control").write_text("x")
    SYSCTL.write_text(value + "\n")
    probe = (
        f"if echo {value} > {SYSCTL}; then echo sysctl written; else echo sysctl refused; fi; "
        f'if (: > "{hosts}/escaped"); then echo file written; else echo file refused; fi; '
        f'if chown 0 "{hosts}/control"; then echo chown done; else echo chown refused; fi'
    )
    done = run("sh", "-c", probe)
    assert done.stdout.split("\n")[:3] == ["sysctl refused", "file refused", "chown refused"], (
        done.stdout + done.stderr
    )
    assert not (hosts / "escaped").exists()


def test_host_root_is_never_the_namespace_s_root() -> None:
    done = subprocess.run(
        [*userns_command(0, 0, 65536), "true"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "refusing to map the namespace's root to host id 0" in done.stderr


def test_a_command_that_cannot_run_is_named() -> None:
    done = run("/nonexistent/tool")
    assert done.returncode == 127
    assert "cannot run /nonexistent/tool" in done.stderr
