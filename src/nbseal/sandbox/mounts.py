"""What a sandbox holds: the command line bubblewrap builds it from.

The sandbox starts empty and gets only what a kernel needs: the system
runtime read-only (``/usr`` and its merged-usr links, a few named files of
``/etc``), the base Python the environment's venv points at, fresh ``/proc``,
``/dev``, ``/tmp`` and ``$HOME``, and files nbseal writes for it (passwd,
group, hosts) passed through pipes. :class:`Mounts` orders binds so that a
parent is mounted before what lies inside it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path, PurePosixPath

from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.limits import DEFAULT_LIMITS

__all__ = [
    "DROP_CAPS",
    "ETC_ALWAYS",
    "ETC_NETWORK",
    "RELAY_INSIDE",
    "SANDBOX_HOME",
    "SANDBOX_HOSTNAME",
    "SANDBOX_USER",
    "SYSTEM_TOPS",
    "Mounts",
    "base_python_prefixes",
    "namespace_args",
    "read_pyvenv_cfg",
    "runtime_args",
    "sandbox_ids",
    "scratch_tmpfs",
    "synthetic_files",
    "usr_args",
]
SANDBOX_USER = "nbseal"
SANDBOX_HOME = f"/home/{SANDBOX_USER}"
SANDBOX_HOSTNAME = "nbseal"
# Where a TCP-only kernel's relay (nbseal/sandbox/tcp_relay.py) is inside: a
# private read-only copy passed through a pipe, like the /etc files below, so
# it does not matter where (or how) nbseal is installed on the host.
RELAY_INSIDE = "/run/nbseal/tcp_relay.py"

# Files of /etc a kernel without network needs: the loader's cache and the
# local time zone, fontconfig's configuration (without it every matplotlib
# figure prints "Fontconfig error: Cannot load default config file"; the
# fonts themselves are under /usr, as are time zones and locales), and the
# public CA certificates (Debian's /etc/ssl/certs, Fedora's /etc/pki ones),
# which code that checks a signature or builds an SSL context reads even
# offline. Host accounts, hosts and secrets (/etc/ssl/private) stay hidden;
# a minimal passwd, group and hosts are written for the sandbox instead.
ETC_ALWAYS = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/fonts",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
)
# With network allowed, name resolution and TLS need these too.
ETC_NETWORK = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
)
# Top-level paths that merged-usr systems make symlinks into /usr.
_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the sandbox holds until setpriv leaves root: bwrap's chdir into the
# working directory (the sandbox user's, mode 0700), and setpriv's switch of
# uid, groups and bounding set. setpriv then clears all of them.
DROP_CAPS = ("CAP_DAC_READ_SEARCH", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


def sandbox_ids() -> tuple[int, int]:
    identity = sandbox_identity()
    return identity.host_uid, identity.host_gid


def namespace_args(*, network: bool) -> list[str]:
    identity = sandbox_identity()
    args = [
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        SANDBOX_HOSTNAME,
        # bwrap kills the kernel when bwrap dies, and bwrap dies with the
        # process that started it (the thread, in fact: see PR_SET_PDEATHSIG).
        "--die-with-parent",
        # A new session: the kernel cannot push input into a host terminal.
        "--new-session",
    ]
    if identity.drops:
        # bwrap runs as root without a user namespace (see identity.py); the
        # sandbox keeps only what setpriv needs to leave root, and drops it.
        args += ["--cap-drop", "ALL"]
        args += [arg for cap in DROP_CAPS for arg in ("--cap-add", cap)]
    else:
        args += [
            "--unshare-user",
            # No nested user namespaces: the kernel cannot gain capabilities
            # in one of its own and remount what it was given.
            "--disable-userns",
            "--uid",
            str(identity.host_uid),
            "--gid",
            str(identity.host_gid),
        ]
    if not network:
        args.insert(0, "--unshare-net")
    return args


def scratch_tmpfs(dest: str, size: int = DEFAULT_LIMITS.scratch) -> list[str]:
    """A fresh tmpfs of at most ``size`` bytes the sandbox's user can write.

    (As root, bwrap would make it root's own.)
    """
    args = ["--size", str(size)]
    if sandbox_identity().drops:
        args += ["--perms", "0777" if dest == SANDBOX_HOME else "1777"]
    return [*args, "--tmpfs", dest]


def usr_args() -> list[str]:
    """The host's /usr read-only, and its merged-usr links (/bin -> usr/bin, ...) as they are."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in _USR_LINKS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def runtime_args(*, network: bool, scratch: int = DEFAULT_LIMITS.scratch) -> list[str]:
    """Read-only system runtime, /proc and /dev: what any dynamic program needs."""
    args = usr_args()
    args += ["--proc", "/proc", "--dev", "/dev", *scratch_tmpfs("/dev/shm", scratch)]
    # /etc holds only bound files; readable by the sandbox's user (bwrap
    # running as root would make it root's own, mode 0700).
    args += ["--perms", "0755", "--dir", "/etc"]
    made = {"/etc"}
    for path in (*ETC_ALWAYS, *(ETC_NETWORK if network else ())):
        # Folders on the way (/etc/ssl for /etc/ssl/certs) would be made
        # root's own, mode 0700, unless made first.
        for folder in reversed(PurePosixPath(path).parents):
            if str(folder) not in made and folder.is_relative_to("/etc") and os.path.exists(path):
                args += ["--perms", "0755", "--dir", str(folder)]
                made.add(str(folder))
        args += ["--ro-bind-try", path, path]
    return args


def read_pyvenv_cfg(env_path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (env_path / "pyvenv.cfg").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip().lower()] = value.strip()
    return values


def _is_within(path: PurePosixPath, parent: PurePosixPath) -> bool:
    return path == parent or parent in path.parents


def base_python_prefixes(env_path: Path) -> list[Path]:
    """Installations outside ``/usr`` the venv at ``env_path`` runs from.

    A uv venv's ``bin/python`` is a symlink to its base interpreter and finds
    the standard library from ``pyvenv.cfg``'s ``home``; both name paths that
    must exist inside, at the same place.
    """
    candidates: list[Path] = []
    home = read_pyvenv_cfg(env_path).get("home")
    if home:
        home_path = Path(home)
        candidates.append(home_path.parent if home_path.name == "bin" else home_path)
    for name in ("python", "python3"):
        link = env_path / "bin" / name
        with contextlib.suppress(OSError):
            target = Path(os.path.join(link.parent, os.readlink(link)))
            if target.parent.name == "bin":
                candidates.append(Path(os.path.normpath(target.parent.parent)))
    prefixes: list[Path] = []
    for prefix in candidates:
        pure = PurePosixPath(prefix)
        if not prefix.is_absolute() or _is_within(pure, PurePosixPath("/usr")):
            continue
        if _is_within(pure, PurePosixPath(env_path)) or prefix in prefixes:
            continue
        prefixes.append(prefix)
    return prefixes


def synthetic_files(uid: int, gid: int, *, network: bool) -> dict[str, bytes]:
    """/etc files written for the sandbox, so the host's accounts stay hidden."""
    files = {
        "/etc/passwd": (
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{SANDBOX_USER}:x:{uid}:{gid}:nbseal sandbox:{SANDBOX_HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ).encode(),
        "/etc/group": f"root:x:0:\n{SANDBOX_USER}:x:{gid}:\nnogroup:x:65534:\n".encode(),
        # "localhost" must resolve for servers a notebook starts for itself.
        "/etc/hosts": (
            f"127.0.0.1 localhost {SANDBOX_HOSTNAME}\n::1 localhost ip6-localhost\n"
        ).encode(),
        "/etc/hostname": f"{SANDBOX_HOSTNAME}\n".encode(),
    }
    if network:
        del files["/etc/hosts"]  # the host's, bound with the resolver's files
    return files


# Top-level directories the runtime mounts read-only (or bwrap makes itself).
# Top-level folders of the system: bound read-only, never written under.
SYSTEM_TOPS = frozenset({"usr", "bin", "sbin", "lib", "lib64", "lib32", "etc", "proc", "dev"})


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


class Mounts:
    """Mount options that may nest, emitted parents first.

    bwrap applies options in order, and a later mount hides what an earlier
    one put below it; sorting by depth (stable) makes a share inside /tmp
    land on the tmpfs, not under it.
    """

    def __init__(self) -> None:
        self._ops: list[tuple[int, int, list[str]]] = []
        self._binds: set[PurePosixPath] = set()  # destinations backed by host paths
        self._dests: set[PurePosixPath] = set()
        self._order: list[PurePosixPath] = []  # destinations as added

    def add(self, dest: str, *args: str) -> None:
        self._ops.append((_depth(dest), len(self._ops), list(args)))
        self._dests.add(PurePosixPath(dest))
        self._order.append(PurePosixPath(dest))
        if "--tmpfs" not in args:
            self._binds.add(PurePosixPath(dest))

    def _hidden_parents(self) -> list[tuple[int, int, list[str]]]:
        """Parents of mount points as traverse-only directories (mode 0111).

        A path like /root/.cache/nbseal/envs/KEY must be reachable, but
        listing /root must not show what lies on the way: bwrap would create
        those parents readable, and owned by the kernel's uid. Without the
        read bit (and on a root remounted read-only, so no chmod) they can
        only be traversed.
        """
        # Each parent in the order of the first mount below it, before the mounts
        # of its depth: not by name, so that a folder with a random name (the
        # runtime folder) takes the same place at every start (sandbox/recipe.py).
        first: dict[PurePosixPath, int] = {}
        for index, dest in enumerate(self._order):
            for parent in dest.parents:
                if len(parent.parts) > 1:
                    first.setdefault(parent, index)
        ops = []
        for parent, index in first.items():
            if parent in self._dests or str(parent.parts[1]) in SYSTEM_TOPS:
                continue  # a mount point itself, or already a read-only system mount
            if any(_is_within(parent, bind) for bind in self._binds):
                continue  # inside a host bind: never create anything there
            ops.append(
                (
                    _depth(str(parent)),
                    index - len(self._order),
                    ["--perms", "0111", "--dir", str(parent)],
                )
            )
        return ops

    def args(self) -> list[str]:
        out: list[str] = []
        for _, _, args in sorted(self._ops + self._hidden_parents()):
            out += args
        return out

    # Left for the next launch's sweep (sweep_stale_cgroups).
