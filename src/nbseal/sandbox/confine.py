"""A tool that must run as root, run as a namespace's root and confined: mmdebstrap.

mmdebstrap builds a Debian tree and runs the packages' maintainer scripts
as that tree's root. Run by host root it would make no user namespace, and
its chroot is no wall to root; run by a user, it makes its own namespace
but its chroot still shows the host. So nbseal runs it as the root of a
user namespace mapped to subordinate ids of the user (or of root;
:mod:`.userns`), and inside that, under bwrap, in a file system that holds
only what a build reads: the host's /usr and the parts of /etc a build
reads (``BUILD_ETC``), read-only; fresh /proc, /dev and /tmp; its input
folders read-only and one scratch folder it may write. No /home, /root,
/var or /srv, no host accounts, no nbseal store, no other build's files;
no network unless the build downloads. What leaves the chroot finds no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nbseal.sandbox.available import find_bwrap
from nbseal.sandbox.mounts import ETC_ALWAYS, ETC_NETWORK, usr_args
from nbseal.sandbox.userns import userns_command

__all__ = ["BUILD_ETC", "confined_command"]

# What of /etc a build reads: apt's and dpkg's configuration (sources,
# proxies, trusted keys), the alternatives the tools are reached through,
# TLS certificates, the loader's cache and name resolution. Not the host's
# accounts, its hostname, machine-id, ssh keys or anything else.
BUILD_ETC = ("/etc/apt", "/etc/dpkg", "/etc/alternatives", *ETC_ALWAYS, *ETC_NETWORK)


def confined_command(
    command: Sequence[str],
    *,
    uid: int,
    gid: int,
    count: int,
    scratch: Path,
    inputs: Sequence[Path] = (),
    network: bool,
) -> list[str]:
    """``command`` as root of a namespace mapped to ``uid``/``gid``.., seeing little of the host.

    ``scratch`` is bound read-write at its own path (it must belong to
    ``uid``), and is the command's working directory, ``HOME`` and ``TMPDIR``;
    ``inputs`` are bound read-only at theirs.
    """
    folder = str(scratch)
    bwrap = [
        find_bwrap(),
        *usr_args(),
        *("--perms", "0755", "--dir", "/etc"),
        *(arg for path in BUILD_ETC for arg in ("--ro-bind-try", path, path)),
        *("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"),
        *("--bind", folder, folder),
        *(arg for path in inputs for arg in ("--ro-bind", str(path), str(path))),
        *("--unshare-pid", "--unshare-ipc", "--unshare-uts"),
        *([] if network else ["--unshare-net"]),
        "--die-with-parent",
        # mmdebstrap builds the tree in $TMPDIR: on disk, not in the tmpfs.
        *("--setenv", "HOME", folder, "--setenv", "TMPDIR", folder, "--chdir", folder),
        "--",
    ]
    return [*userns_command(uid, gid, count), *bwrap, *command]
