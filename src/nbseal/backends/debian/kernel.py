"""The kernel of a Debian root file system: its kernelspec, with paths inside the tree."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from nbseal.backends.kernelspecs import (
    KernelCommand,
    command_from_spec,
    pick_kernelspec,
    read_kernelspecs,
)
from nbseal.errors import KernelStartError
from nbseal.sandbox.rootfs import ROOTFS_PATH

__all__ = ["KERNEL_DIRS", "find_rootfs_kernel_command", "rootfs_kernelspecs"]

# Where Jupyter looks for system-wide kernelspecs, in its order of precedence.
KERNEL_DIRS = ("usr/local/share/jupyter/kernels", "usr/share/jupyter/kernels")


def rootfs_kernelspecs(rootfs: Path) -> dict[str, dict[str, Any]]:
    """Kernelspecs of ``rootfs`` by name; /usr/local wins over /usr, as in Jupyter."""
    return read_kernelspecs(*(rootfs / base for base in KERNEL_DIRS))


def _inside_exists(rootfs: Path, path: str) -> bool:
    """Whether ``path`` (absolute inside the tree) exists there; follows the tree's links."""
    current = PurePosixPath("/")
    parts = list(PurePosixPath(path).parts[1:])
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        host = rootfs / str(candidate).lstrip("/")
        if host.is_symlink():
            hops += 1
            if hops > 40:
                return False
            target = PurePosixPath(os.readlink(host))
            base = target if target.is_absolute() else current / target
            parts = list(base.parts[1:]) + parts
            current = PurePosixPath("/")
            continue
        if not host.exists():
            return False
        current = candidate
    return True


def _which_inside(rootfs: Path, program: str) -> str | None:
    if program.startswith("/"):
        return program if _inside_exists(rootfs, program) else None
    for folder in ROOTFS_PATH.split(":"):
        if _inside_exists(rootfs, f"{folder}/{program}"):
            return f"{folder}/{program}"
    return None


def find_rootfs_kernel_command(rootfs: Path, wanted: str | None = None) -> KernelCommand:
    """The kernel of the root file system at ``rootfs`` (paths in argv are inside it).

    A spec naming ``python`` gets ``python3`` when the tree has no ``python``
    (Debian ships only ``python3``; octave_kernel's spec says ``python``).
    """
    specs = rootfs_kernelspecs(rootfs)
    if not specs:
        raise KernelStartError.no_kernel(
            rootfs,
            holder="root file system",
            context=f"looked in /{KERNEL_DIRS[0]} and /{KERNEL_DIRS[1]}",
            hint="add a kernel package to the environment, e.g. deb:r-cran-irkernel",
        )
    name, spec, argv = pick_kernelspec(specs, wanted)
    if argv[0] in {"python", "{python}"} and _which_inside(rootfs, "python") is None:
        argv[0] = "python3"
    if _which_inside(rootfs, argv[0]) is None:
        raise KernelStartError.program_missing(name, argv)
    # A TCP-only (xeus) kernel needs the tree's own Python for nbseal's relay.
    return command_from_spec(name, spec, argv, relay_python=_which_inside(rootfs, "python3"))
