"""Start a kernel inside a root file system (a Debian tree) under bubblewrap.

:class:`~nbseal.sandbox.bwrap.BwrapLauncher` runs a venv's kernel on the
host's own ``/usr``. A root file system brings its own ``/usr``, ``/etc`` and
everything else, so here the tree *is* the sandbox's ``/``, read-only, and the
host contributes only what the policy grants: the kernel's ipc socket
directory and the working directory (writable, at the same paths as on the
host), shares and read-only data binds, fresh tmpfs ``/tmp`` and ``$HOME``,
``/proc`` and a minimal ``/dev``. No network unless the policy allows it;
then the host's resolver files are bound over the tree's. ``/etc/passwd``,
``/etc/group``, ``/etc/hosts`` and ``/etc/hostname`` are written for the
sandbox, as for venv kernels.

The tree is not bound as ``/`` in one piece: a read-only bind at ``/`` would
leave nowhere to create mount points for paths the tree lacks (the socket
directory, say ``/root/.cache/...``, or a working directory under
``/work``). Instead bwrap's root stays a tmpfs, each top-level entry of the
tree is bound (or symlinked) onto it read-only, and a top-level directory
that must hold a mount point is rebuilt one level deeper, along the path to
it only. The tmpfs root is remounted read-only at the end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbseal.errors import KernelStartError
from nbseal.sandbox.bwrap import BwrapLauncher
from nbseal.sandbox.launch import LaunchRequest
from nbseal.sandbox.mounts import RELAY_INSIDE, SANDBOX_HOME, namespace_args, scratch_tmpfs

__all__ = ["ROOTFS_PATH", "RootfsLauncher"]

# The kernel's PATH inside a tree: the tree's own programs.
ROOTFS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Provided by bwrap itself or by the launcher, never taken from the tree.
_OWN_TOPS = frozenset({"proc", "dev", "sys", "tmp", "run"})
# With network allowed, the host's resolver replaces the tree's copy.
_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf")
# Files the store writes into an entry; not part of the tree the kernel sees.
_HIDDEN_TOP_FILES = frozenset({"nbseal-env.json"})


# ---------------------------------------------------------------------------
# the mount plan
# ---------------------------------------------------------------------------
def _on_path_to(path: PurePosixPath, dests: Sequence[PurePosixPath]) -> bool:
    """Whether some destination lies strictly below ``path``."""
    return any(path in dest.parents for dest in dests)


@dataclass(frozen=True)
class _Tree:
    rootfs: Path

    def host(self, inside: PurePosixPath) -> Path:
        return self.rootfs / str(inside).lstrip("/")

    def graft(self, dests: Sequence[PurePosixPath]) -> list[str]:
        """bwrap options putting the tree on a tmpfs root, split along ``dests``."""
        return self._level(PurePosixPath("/"), dests, top=True)

    def _level(self, inside: PurePosixPath, dests: Sequence[PurePosixPath], top: bool) -> list[str]:
        args: list[str] = []
        with os.scandir(self.host(inside)) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            child = inside / entry.name
            if top and (entry.name in _OWN_TOPS or entry.name in _HIDDEN_TOP_FILES):
                continue
            if child in dests:
                continue  # the mount itself covers it
            if entry.is_symlink():
                if _on_path_to(child, dests):
                    raise KernelStartError.bind_through_link(child)
                args += ["--symlink", os.readlink(entry.path), str(child)]
            elif entry.is_dir(follow_symlinks=False) and _on_path_to(child, dests):
                mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                args += ["--perms", f"{mode | 0o111:04o}", "--dir", str(child)]
                args += self._level(child, dests, top=False)
            elif entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                args += ["--ro-bind", entry.path, str(child)]
            # sockets, fifos and device nodes of the tree are left out
        return args


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _hidden_parents(
    rootfs: Path, dests: Sequence[PurePosixPath], scratch: Sequence[PurePosixPath]
) -> list[tuple[str, list[str]]]:
    """Parents of mount points that neither the tree nor a host bind provides.

    Created traverse-only (mode 0111), as the venv launcher does, so that
    listing e.g. /root/.cache inside shows nothing of the host's layout. A
    parent on one of the ``scratch`` tmpfs mounts (a socket directory in
    /tmp) is made here too: bwrap would make it with the host parent's mode,
    which the kernel's unprivileged uid may not traverse.
    """
    # In the order of the first mount below each, not by name: a folder with a
    # random name (the runtime folder) takes the same place at every start
    # (sandbox/recipe.py).
    parents: dict[PurePosixPath, None] = {}
    for dest in dests:
        for parent in dest.parents:
            if len(parent.parts) > 1:
                parents.setdefault(parent)
    binds = [d for d in dests if d not in scratch]
    result = []
    for parent in (p for p in parents if p not in dests):
        if any(d in parent.parents for d in binds):
            continue  # inside a host bind: never create anything there
        if any(d in parent.parents for d in scratch):
            result.append((str(parent), ["--perms", "0111", "--dir", str(parent)]))
            continue
        if (rootfs / str(parent).lstrip("/")).exists():
            continue  # the tree has it (split by the graft)
        result.append((str(parent), ["--perms", "0111", "--dir", str(parent)]))
    return result


# ---------------------------------------------------------------------------
# the launcher
# ---------------------------------------------------------------------------
class RootfsLauncher(BwrapLauncher):
    """Like :class:`BwrapLauncher`, but the environment is a whole root file system.

    ``request.env_path`` is the tree. Namespaces, the uid, the synthetic
    /etc files, ``--die-with-parent``, the info-fd and the kernel-pid lookup
    for signal interrupts are the venv launcher's own.
    """

    def search_path(self, request: LaunchRequest) -> str:
        return ROOTFS_PATH

    def build_argv(
        self,
        request: LaunchRequest,
        *,
        files: Mapping[str, int | str],
        info_fd: int | str | None = None,
    ) -> list[str]:
        policy = self.policy
        rootfs = request.env_path
        if not (rootfs / "usr").is_dir():
            raise KernelStartError.not_a_root_file_system(rootfs)
        # (destination, options) of everything mounted over the tree.
        size = policy.limits.scratch
        mounts: list[tuple[str, list[str]]] = [
            ("/tmp", scratch_tmpfs("/tmp", size)),
            ("/run", scratch_tmpfs("/run", size)),
            (SANDBOX_HOME, scratch_tmpfs(SANDBOX_HOME, size)),
        ]
        for host, inside in policy.readonly_binds:
            mounts.append((str(inside), ["--ro-bind", str(host), str(inside)]))
        for share in policy.shares:
            option = "--bind" if share.mode == "rw" else "--ro-bind"
            at = str(share.host_path)
            mounts.append((at, [option, at, at]))
        workdir = str(policy.workdir)
        mounts.append((workdir, ["--bind", workdir, workdir]))
        for inside, target in policy.links:
            mounts.append((str(inside), ["--symlink", str(target), str(inside)]))
        socket_dir = str(request.socket_dir)
        mounts.append((socket_dir, ["--bind", socket_dir, socket_dir]))
        # Files bound over the tree's /etc; a missing one needs /etc split.
        etc_files: list[tuple[str, list[str]]] = [
            (dest, ["--ro-bind-data", str(fd), dest]) for dest, fd in files.items()
        ]
        if policy.network:
            for path in _NETWORK_FILES:
                if os.path.exists(path):
                    etc_files.append((path, ["--ro-bind", path, path]))
        dests = [PurePosixPath(d) for d, _ in mounts]
        dests += [
            PurePosixPath(d)
            for d, _ in etc_files
            if not (rootfs / d.lstrip("/")).exists() and not os.path.islink(rootfs / d.lstrip("/"))
        ]

        argv = [self.bwrap, *namespace_args(network=policy.network), "--clearenv"]
        for key, value in self.environment(request).items():
            argv += ["--setenv", key, value]
        argv += _Tree(rootfs).graft(dests)
        argv += ["--proc", "/proc", "--dev", "/dev", *scratch_tmpfs("/dev/shm", size)]
        scratch = [PurePosixPath(d) for d in ("/tmp", "/run", SANDBOX_HOME)]
        mounts += _hidden_parents(rootfs, [PurePosixPath(d) for d, _ in mounts], scratch)
        # Parents first: a share inside /tmp lands on the tmpfs, not under it.
        for _, options in sorted(mounts, key=lambda m: _depth(m[0])):
            argv += options
        for _, options in etc_files:
            argv += options
        argv += ["--remount-ro", "/"]
        argv += ["--chdir", workdir]
        if info_fd is not None:
            argv += ["--info-fd", str(info_fd)]
        # The tree's own setpriv and prlimit (util-linux is Essential in Debian).
        return [*argv, "--", *self.entry_command(), *request.command(RELAY_INSIDE)]
