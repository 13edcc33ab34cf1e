"""Sealing build steps: what may run package code while an environment is made.

Resolving or installing can run a package's own code on the host: uv builds
an sdist by running its build backend (``setup.py``, hatchling, ...), and a
kernel's install step (``python -m bash_kernel.install``) is the package's
code too. Such steps run here under bubblewrap, as kernels do, but with the
network (the index and the build's own requirements need it) and with only
what the build needs: the system runtime read-only, the interpreter and the
tool read-only, the build's inputs read-only, and writable only the uv cache
and the step's own staging folder. No ``$HOME`` (a fresh empty one), no host
files beyond those, no host processes, the seccomp filter of the kernels.

Run by a regular user, the step runs under that user's uid in a user
namespace, with no capabilities. Run by root, it never runs as host root:
as a kernel does (see :mod:`nbseal.sandbox.identity`), bwrap builds the
sandbox as root without a user namespace and ``setpriv`` switches to the
unprivileged sandbox uid, with no capabilities and no_new_privs, so the
folders it writes are handed to that uid first (nbseal keeps a uv cache of
its own for root, see :func:`nbseal.uv.uv_cache_dir`). ``/proc`` is
read-only either way. A notebook that needs only wheels runs no package
code at all: uv then only downloads, checks hashes and unpacks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from nbseal.sandbox.available import find_bwrap
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.mounts import (
    DROP_CAPS,
    SANDBOX_HOME,
    Mounts,
    runtime_args,
    scratch_tmpfs,
)
from nbseal.sandbox.recipe import pipe_with
from nbseal.sandbox.seccomp import PROFILE, compiled_filter

__all__ = ["SealedStep", "sealed_step"]

# A build's scratch tmpfs may hold a compiler's temporary files: larger than a kernel's.
_BUILD_SCRATCH = 16 * 2**30

# Host variables a build may need (proxies, certificates, uv's own settings).
_PASSED_PREFIXES = ("UV_",)
_PASSED = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SOURCE_DATE_EPOCH",
)


class SealedStep:
    """A command line wrapped in bwrap, and the fd bwrap reads its filter from."""

    def __init__(self, argv: list[str], seccomp_fd: int) -> None:
        self.argv = argv
        self.seccomp_fd = seccomp_fd

    def close(self) -> None:
        os.close(self.seccomp_fd)


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_HOME,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
    }
    for key, value in os.environ.items():
        if key in _PASSED or key.startswith(_PASSED_PREFIXES):
            env[key] = value
    env.update(extra)
    return env


def _existing_real(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if real.exists() and real not in found:
            found.append(real)
    return found


def sealed_step(
    argv: list[str],
    *,
    readable: Iterable[Path],
    writable: Iterable[Path],
    cwd: Path,
    env: Mapping[str, str],
) -> SealedStep:
    """``argv`` run in a build sandbox seeing ``readable`` and ``writable`` only.

    Paths are bound at their real (link-free) location; the caller passes
    real paths on the command line too. ``cwd`` is one of ``writable``, or
    ``/tmp`` (the sandbox's own, empty).
    """
    identity = sandbox_identity()
    args = [find_bwrap()]
    if identity.drops:
        # As root: no user namespace (it would map to host uid 0); setpriv leaves root.
        args += ["--cap-drop", "ALL"]
        for cap in DROP_CAPS:
            args += ["--cap-add", cap]
        argv = [*identity.drop_command(), *argv]
    else:
        uid, gid = str(os.getuid()), str(os.getgid())
        args += ["--unshare-user", "--disable-userns", "--uid", uid, "--gid", gid]
        args += ["--cap-drop", "ALL"]
    args += [
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    for key, value in _environment(env).items():
        args += ["--setenv", key, value]
    args += runtime_args(network=True)
    args += ["--remount-ro", "/proc"]
    mounts = Mounts()
    mounts.add("/tmp", *scratch_tmpfs("/tmp", _BUILD_SCRATCH))
    mounts.add(SANDBOX_HOME, *scratch_tmpfs(SANDBOX_HOME, _BUILD_SCRATCH))
    # One bind per writable tree: a folder inside another writable one is
    # reached through it (hard links between them work only within one mount).
    writable_real = _existing_real(writable)
    writable_real = [
        p for p in writable_real if not any(w in p.parents for w in writable_real if w != p)
    ]
    for path in _existing_real(readable):
        if not any(path == w or w in path.parents for w in writable_real):
            mounts.add(str(path), "--ro-bind", str(path), str(path))
    for path in writable_real:
        mounts.add(str(path), "--bind", str(path), str(path))
    args += mounts.args()
    args += ["--remount-ro", "/", "--chdir", os.path.realpath(cwd)]
    seccomp_fd = pipe_with(compiled_filter(PROFILE))
    args += ["--seccomp", str(seccomp_fd), "--", *argv]
    return SealedStep(args, seccomp_fd)
