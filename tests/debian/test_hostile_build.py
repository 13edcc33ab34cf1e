"""A Debian package's maintainer script attacks the host while nbseal builds its tree.

The package is made here (dpkg-deb) and added to the R environment's lock,
as a forged or compromised archive would; the offline build installs it. Its
postinst runs as the tree's root while mmdebstrap builds and tries what host
root in a chroot could do: write a host sysctl, and leave the chroot (a
second chroot, then ``..`` past the first one's root) to read host files
anyone may read (in /var/tmp and in /etc) and to write a file in a host
folder only root may write.
nbseal must run mmdebstrap as the root of a user namespace of subordinate
ids, in a bwrap that shows only /usr, /etc and its build folders
(nbseal.sandbox.confine), so all three fail: as root, and as a regular
user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.lock import DebCache, DebianLockData, DebianPackage, sha256_file
from nbseal.backends.debian.preflight import BuildIds, build_ids, root_build_ids
from nbseal.fsutil import remove_tree
from nbseal.progress import Progress
from tests.debian.conftest import BuiltRootfs
from tests.debian.users import CI_USER, ensure_user, private_dir, run_as, user_env

SYSCTL = "/proc/sys/kernel/printk_ratelimit_burst"
REPORT = "/var/lib/nbseal-probe"

POSTINST = """#!/bin/sh
exec > {report} 2>&1
echo "uid_map $(tr -s ' ' < /proc/self/uid_map)"
value=$(cat {sysctl})
if (echo "$value" > {sysctl}); then echo "sysctl written"; else echo "sysctl refused"; fi
perl -e '
  mkdir "/.nbseal-out"; chroot "/.nbseal-out" or die "chroot: $!\\n";
  chdir ".." for 1 .. 64; chroot "." or die "chroot back: $!\\n";
  print -d "/usr/share/mmdebstrap" ? "out of the chroot\\n" : "still in the chroot\\n";
  for my $path ("{secret}", "{etc_secret}") {{
    if (open(my $s, "<", $path)) {{ print "read the host: ", scalar <$s>; }}
    else {{ print "read refused: $!\\n"; }}
  }}
  open(my $f, ">", "{target}/escaped") or die "write refused: $!\\n";
  print $f "host root\\n";
' && echo "escape wrote the host" || echo "escape refused"
exit 0
"""


@pytest.fixture
def etc_secret() -> Iterator[Path]:
    """A file anyone may read in the host's /etc, which no build reads."""
    secret = Path(f"/etc/nbseal-test-secret-{os.getpid()}")
    secret.write_text("host configuration\n")
    secret.chmod(0o644)
    yield secret
    secret.unlink()


@pytest.fixture
def host_secret() -> Iterator[Path]:
    """A file anyone on the host may read, in a folder no build needs (/var/tmp)."""
    folder = Path(tempfile.mkdtemp(prefix="nbseal-secret-", dir="/var/tmp"))
    os.chmod(folder, 0o755)
    secret = folder / "secret"
    secret.write_text("host secret\n")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(folder)


def _probe_deb(where: Path, target: Path, secrets: tuple[Path, Path]) -> Path:
    package = where / "pkg"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "DEBIAN" / "control").write_text(
        "Package: nbseal-probe\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: nbseal tests <tests@nbseal.invalid>\nDescription: hostile postinst\n"
    )
    postinst = package / "DEBIAN" / "postinst"
    postinst.write_text(
        POSTINST.format(
            report=REPORT, sysctl=SYSCTL, target=target, secret=secrets[0], etc_secret=secrets[1]
        )
    )
    postinst.chmod(0o755)
    deb = where / "nbseal-probe_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(package), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def _hostile_lock(r_env: BuiltRootfs, deb: Path) -> DebianLockData:
    data = DebianLockData.loads(r_env.lock.pylock)
    probe = DebianPackage(
        "nbseal-probe", "1.0", "all", sha256_file(deb), deb.stat().st_size, deb.name
    )
    return dataclasses.replace(data, packages=(*data.packages, probe))


def _check(report: list[str], build_ids: BuildIds, open_dir: Path, sysctl_before: str) -> None:
    # The script ran, with /proc mounted (else the sysctl line would prove nothing)...
    assert report[0].startswith("uid_map "), report
    # ... as the root of a namespace whose root is the build's subordinate id.
    assert report[0].split()[1:] == ["0", str(build_ids.uid), str(build_ids.count)], report
    assert "sysctl refused" in report, report
    # The script left the chroot, and found neither the host's files nor a
    # way to write the host there (the folder is out of sight, or refused).
    assert "out of the chroot" in report, report
    assert sum(line.startswith("read refused: ") for line in report) == 2, report
    assert any(line.startswith("write refused: ") for line in report), report
    assert "escape refused" in report, report
    assert not (open_dir / "escaped").exists()
    assert Path(SYSCTL).read_text() == sysctl_before


# Skipped before the fixtures run: a regular user could not write the /etc secret.
@pytest.mark.skipif(os.geteuid() != 0, reason="root's build: the next test is a regular user's")
def test_maintainer_scripts_of_root_s_build_cannot_reach_the_host(
    r_env: BuiltRootfs, open_dir: Path, host_secret: Path, etc_secret: Path, tmp_path: Path
) -> None:
    deb = _probe_deb(tmp_path, open_dir, (host_secret, etc_secret))
    backend = DebianBackend()
    backend.debs.add_file(deb, sha256_file(deb))
    hostile = _hostile_lock(r_env, deb)
    before = Path(SYSCTL).read_text()
    dest = r_env.path.parent / f".hostile-{os.getpid()}"
    try:
        asyncio.run(backend.build_offline(hostile, dest, Progress("hostile")))
        report = (dest / REPORT.lstrip("/")).read_text().splitlines()
    finally:
        remove_tree(dest)
    _check(report, root_build_ids(), open_dir, before)


USER_BUILD = """
import asyncio, json, sys
from pathlib import Path
from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.lock import DebianLockData
from nbseal.fsutil import remove_tree
from nbseal.progress import Progress
data = DebianLockData.loads(Path(sys.argv[1]).read_text())
dest = Path(sys.argv[2])
try:
    asyncio.run(DebianBackend().build_offline(data, dest, Progress("hostile")))
    print(json.dumps((dest / sys.argv[3]).read_text().splitlines()))
finally:
    remove_tree(dest)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the test creates the user it runs")
def test_maintainer_scripts_of_a_user_s_build_cannot_reach_the_host(
    r_env: BuiltRootfs, open_dir: Path, host_secret: Path, etc_secret: Path, tmp_path: Path
) -> None:
    """The same, run by a regular user (created, as tests/debian/test_unprivileged does)."""
    user = ensure_user(CI_USER, subids=True)
    home = private_dir(user, "nbseal-ci-")
    try:
        deb = _probe_deb(tmp_path, open_dir, (host_secret, etc_secret))
        hostile = _hostile_lock(r_env, deb)
        # The user's own .deb store: the lock's .debs (copied from root's) and the probe.
        debs = home / "cache" / "debs"
        debs.mkdir(parents=True)
        sources = {p.sha256: DebCache().path(p.sha256) for p in hostile.all_debs()}
        sources[sha256_file(deb)] = deb
        for sha, source in sources.items():
            shutil.copyfile(source, debs / f"{sha}.deb")
        lock_file = home / "lock.json"
        lock_file.write_text(hostile.dumps())
        for path in [home / "cache", debs, *debs.iterdir(), lock_file]:
            os.chown(path, user.pw_uid, user.pw_gid)
        before = Path(SYSCTL).read_text()
        done = run_as(
            user,
            [sys.executable, "-c", USER_BUILD, str(lock_file), str(home / "tree"), REPORT[1:]],
            user_env(home, NBSEAL_CACHE_DIR=str(home / "cache")),
            cwd=home,
            timeout=1200,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        ids = build_ids(user.pw_name, user.pw_uid)
        _check(report, ids, open_dir, before)
    finally:
        remove_tree(home)
