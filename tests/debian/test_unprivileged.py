"""Debian environments built and run by a regular user, through the real ``nbseal`` command.

The test process must be root, to create the users: ``nbseal-ci`` with 65536
subordinate uids and gids (useradd grants them on Debian; else usermod adds
them), and ``nbseal-nosubid`` without any. Each gets a private folder (mode
0700, like a home on Debian 12) for its cache. ``nbseal-nosubid`` must be told
what is missing and how to fix it; ``nbseal-ci`` hard-links files into a
read-only tree, and (slow, marked) resolves R from the mirror and runs it
with ``nbseal run``, then rebuilds it offline as a second tree of its store.
The checkout's Python is made reachable for the users without changing the
host (see :func:`tests.debian.users.as_user_argv`).
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from nbseal.backends.debian.lock import DebianLockData
from nbseal.backends.debian.preflight import build_ids
from nbseal.backends.debian.tree import installed_packages
from nbseal.fsutil import remove_tree
from nbseal.lock import Lock
from tests.debian.unprivileged_steps import describe
from tests.debian.users import (
    CI_USER,
    NO_SUBIDS_USER,
    REPO,
    ensure_user,
    private_dir,
    run_as,
    user_env,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: the test creates the regular users it runs nbseal as",
)

NBSEAL = str(Path(sys.prefix) / "bin" / "nbseal")
R_CELL = (
    "#seal pin 2026-11-01\n"
    "#seal env r <- deb:r-base-core deb:r-cran-irkernel kernel=ir\n"
    "cat(sum(1:10))"
)


def _notebook(folder: Path, user: pwd.struct_passwd) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(R_CELL))
    path = folder / "r.ipynb"
    nbformat.write(notebook, path)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _build_rooms_of(user: pwd.struct_passwd) -> list[Path]:
    """Build folders (inputs, repositories, outputs) a build of ``user`` left in /tmp."""
    owners = {user.pw_uid, build_ids(user.pw_name, user.pw_uid).uid}
    return [p for p in Path("/tmp").glob("nbseal-debian-*") if p.stat().st_uid in owners]


@pytest.fixture
def home_of() -> Iterator[list[Path]]:
    """Private folders made for the users; removed (as root) afterwards."""
    made: list[Path] = []
    yield made
    for path in made:
        remove_tree(path)


@pytest.mark.usefixtures("mmdebstrap")
def test_a_user_without_subordinate_ids_is_told_what_is_missing(home_of: list[Path]) -> None:
    user = ensure_user(NO_SUBIDS_USER, subids=False)
    home = private_dir(user, "nbseal-nosubid-")
    home_of.append(home)
    notebook = _notebook(home, user)
    env = user_env(home, NBSEAL_CACHE_DIR=str(home / "cache"))
    done = run_as(user, [NBSEAL, "run", str(notebook)], env, cwd=home, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert (
        f"cannot build Debian environments as {NO_SUBIDS_USER}: /etc/subuid and /etc/subgid "
        f"grant {NO_SUBIDS_USER} no subordinate ids"
    ) in output, output
    assert "usermod --add-subuids" in output, output
    assert "--add-subgids" in output, output
    # Nothing was built or left behind.
    assert not list((home / "cache").glob("envs/[0-9a-f]*"))


SHARE_AS_USER = """
import json, os, sys
from pathlib import Path
from nbseal.backends.debian.tree import share_identical_files
from nbseal.fsutil import make_tree_readonly, remove_tree
base = Path(sys.argv[1])
for name in ("old", "new"):
    lib = base / name / "usr/lib"
    lib.mkdir(parents=True)
    (lib / "libR.so").write_bytes(b"R" * 100_000)
    os.utime(lib / "libR.so", (1_700_000_000, 1_700_000_000))
    make_tree_readonly(base / name)
result = share_identical_files(base / "new", [base / "old"])
new, old = base / "new/usr/lib/libR.so", base / "old/usr/lib/libR.so"
print(json.dumps({
    "linked": result.linked,
    "same_inode": new.stat().st_ino == old.stat().st_ino,
    "dir_mode": oct((base / "new/usr/lib").stat().st_mode & 0o777),
}))
remove_tree(base / "new")
remove_tree(base / "old")
"""


def test_a_user_hard_links_files_into_a_read_only_tree(home_of: list[Path]) -> None:
    """A regular user cannot link into a read-only directory: sharing opens it for a while."""
    user = ensure_user(CI_USER, subids=True)
    home = private_dir(user, "nbseal-ci-")
    home_of.append(home)
    done = run_as(
        user,
        [sys.executable, "-c", SHARE_AS_USER, str(home)],
        user_env(home),
        cwd=home,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"linked": 1, "same_inode": True, "dir_mode": "0o555"}
    assert not list(home.iterdir())


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.usefixtures("mmdebstrap")
def test_a_regular_user_builds_runs_and_rebuilds_r(home_of: list[Path]) -> None:
    user = ensure_user(CI_USER, subids=True)
    home = private_dir(user, "nbseal-ci-")
    home_of.append(home)
    cache = home / "cache"
    notebook = _notebook(home, user)

    # Resolve (mmdebstrap as the user, a tarball unpacked by nbseal), store, run.
    started = time.monotonic()
    done = run_as(
        user,
        [NBSEAL, "run", str(notebook)],
        user_env(home, NBSEAL_CACHE_DIR=str(cache)),
        cwd=home,
        timeout=1500,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    outputs = nbformat.read(notebook, as_version=4).cells[0].outputs
    assert [o.text for o in outputs if o.output_type == "stream"] == ["55"]
    print(f"\nMEASURE r resolve+build+run as {CI_USER} (nbseal run): {seconds:.1f} s")

    [entry] = list((cache / "envs").glob("[0-9a-f]*"))
    lock = Lock.from_json(json.loads((entry / "nbseal-env.json").read_text())["lock"])
    assert installed_packages(entry) == DebianLockData.loads(lock.pylock).installed_set()
    # The user's own files, read-only, without setuid bits or device nodes.
    found = describe(entry)
    assert found == {"owners": [user.pw_uid], "writable": [], "setid": [], "special": []}
    # Absolute symbolic links inside the tree are kept as they are.
    assert os.readlink(entry / "usr/lib/R/etc/Renviron") == "/etc/R/Renviron"
    for readable in ("etc/apt/sources.list", "etc/dpkg/dpkg.cfg.d/99nbseal-path-filters"):
        assert stat.S_IMODE((entry / readable).stat().st_mode) == 0o444, readable
    [log] = list((cache / "debian" / "logs").glob("resolve-*.log"))
    assert "creating tarball" in log.read_text()
    # No scratch left: no tarball, no resolved tree waiting, no build folder.
    assert not list((cache / "debian" / "resolved").iterdir())
    assert not _build_rooms_of(user)

    # Offline (no network namespace at all), from the stored .debs, as a
    # second tree in the same store: shares files with the first, then removed.
    done = run_as(
        user,
        [sys.executable, "-m", "tests.debian.unprivileged_steps"],
        user_env(home, NBSEAL_CACHE_DIR=str(cache), NBSEAL_DEBIAN_MIRROR="http://127.0.0.1:9/x"),
        cwd=REPO,
        timeout=1500,
        offline=True,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"MEASURE r offline rebuild as {CI_USER}: {result['seconds']:.1f} s; "
        + "; ".join(s for s in result["steps"] if "unpacked" in s or "hard-linked" in s)
        + f"; {result['apart_mib']:.0f} MiB -> {result['together_mib']:.0f} MiB"
    )
    assert result["same_packages"]
    assert any(step.startswith("unpacked the ") for step in result["steps"])
    assert result["second_tree"] == found
    assert result["libr_shared"]
    assert result["together_mib"] < 0.6 * result["apart_mib"]
    assert result["removed"]
    assert result["first_intact"]
    assert not _build_rooms_of(user)
