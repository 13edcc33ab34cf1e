"""A Debian package's maintainer script attacks the host while nbseal builds its tree.

The package is made here (dpkg-deb) and added to the R environment's lock,
as a forged or compromised archive would; the offline build installs it. Its
postinst runs as the tree's root while mmdebstrap builds and tries what host
root in a chroot could do: write a host sysctl, and leave the chroot (a
second chroot, then ``..`` past the first one's root) to read a host file
anyone may read and to write a file in a host folder only root may write.
As root, nbseal must run mmdebstrap as the root of a user namespace of
unprivileged ids, in a bwrap that shows only /usr, /etc and its scratch
(nbseal.sandbox.confine), so all three fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbseal.backends.debian import DebianBackend
from nbseal.backends.debian.lock import DebianLockData, DebianPackage, sha256_file
from nbseal.fsutil import remove_tree
from nbseal.progress import Progress
from tests.debian.conftest import BuiltRootfs

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
  if (open(my $s, "<", "{secret}")) {{ print "read the host: ", scalar <$s>; }}
  else {{ print "read refused: $!\\n"; }}
  open(my $f, ">", "{target}/escaped") or die "write refused: $!\\n";
  print $f "host root\\n";
' && echo "escape wrote the host" || echo "escape refused"
exit 0
"""


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


def _probe_deb(where: Path, target: Path, secret: Path) -> Path:
    package = where / "pkg"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "DEBIAN" / "control").write_text(
        "Package: nbseal-probe\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: nbseal tests <tests@nbseal.invalid>\nDescription: hostile postinst\n"
    )
    postinst = package / "DEBIAN" / "postinst"
    postinst.write_text(POSTINST.format(report=REPORT, sysctl=SYSCTL, target=target, secret=secret))
    postinst.chmod(0o755)
    deb = where / "nbseal-probe_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(package), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def test_maintainer_scripts_cannot_reach_the_host(
    r_env: BuiltRootfs, open_dir: Path, host_secret: Path, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("as a regular user the scripts run as subordinate ids by construction")
    deb = _probe_deb(tmp_path, open_dir, host_secret)
    sha = sha256_file(deb)
    backend = DebianBackend()
    backend.debs.add_file(deb, sha)
    data = DebianLockData.loads(r_env.lock.pylock)
    probe = DebianPackage("nbseal-probe", "1.0", "all", sha, deb.stat().st_size, deb.name)
    hostile = dataclasses.replace(data, packages=(*data.packages, probe))
    before = Path(SYSCTL).read_text()
    dest = r_env.path.parent / f".hostile-{os.getpid()}"
    try:
        asyncio.run(backend.build_offline(hostile, dest, Progress("hostile")))
        report = (dest / REPORT.lstrip("/")).read_text().splitlines()
    finally:
        remove_tree(dest)
    # The script ran, with /proc mounted (else the sysctl line would prove nothing)...
    assert report[0].startswith("uid_map "), report
    uid_map = report[0].split()[1:]
    # ... as the root of a namespace whose root is not host root.
    assert uid_map[:2] != ["0", "0"], report
    assert "sysctl refused" in report, report
    # The script left the chroot, and found neither the host's files nor a
    # way to write the host there (the folder is out of sight, or refused).
    assert "out of the chroot" in report, report
    assert any(line.startswith("read refused: ") for line in report), report
    assert any(line.startswith("write refused: ") for line in report), report
    assert "escape refused" in report, report
    assert not (open_dir / "escaped").exists()
    assert Path(SYSCTL).read_text() == before
