"""What a sealed kernel may see and do, as plain data.

A policy says only what is *granted* beyond the default seal (no network, no
host files except the runtime the kernel needs); the launcher turns it into
namespaces and mounts. Keeping it data lets ``#seal describe`` show it and
lets a notebook's directives build it without knowing bubblewrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbseal.sandbox.limits import DEFAULT_LIMITS, Limits
from nbseal.sandbox.mounts import SYSTEM_TOPS
from nbseal.sandbox.seccomp import PROFILE

__all__ = ["UNSEALED_SUMMARY", "SandboxPolicy", "Share", "ShareMode", "grants_summary"]

UNSEALED_SUMMARY = "UNSEALED (--no-sandbox): kernels see the network and the user's files"

ShareMode = Literal["ro", "rw"]


def _require_absolute(path: Path, what: str) -> None:
    # Binds happen at the same path inside; a relative path would depend on
    # the launcher's cwd and could silently bind something else.
    if not path.is_absolute():
        raise ValueError(f"{what} must be an absolute path, got {str(path)!r}")


@dataclass(frozen=True)
class Share:
    """A host path the kernel sees at the same path, read-only or writable."""

    host_path: Path
    mode: ShareMode = "ro"

    def __post_init__(self) -> None:
        _require_absolute(self.host_path, "a shared path")
        if self.mode not in ("ro", "rw"):
            raise ValueError(f"a share's mode is 'ro' or 'rw', got {self.mode!r}")


@dataclass(frozen=True)
class SandboxPolicy:
    """Everything a sealed kernel is granted.

    ``workdir`` is a host scratch directory, writable, bound at the same path
    so paths the kernel prints name the same files on the host; it becomes
    the kernel's cwd. ``readonly_binds`` maps host paths to paths inside
    (for data files named by hash, shown under a friendly name). ``links``
    are symbolic links made inside the sandbox only, ``(path inside, target)``:
    how a notebook's ``../styles/custom.css`` finds what it names, beside the
    working directory; never inside it or inside any host path it is given.
    """

    workdir: Path
    network: bool = False
    shares: tuple[Share, ...] = ()
    readonly_binds: tuple[tuple[Path, Path], ...] = ()
    limits: Limits = DEFAULT_LIMITS
    links: tuple[tuple[Path, Path], ...] = ()

    def __post_init__(self) -> None:
        _require_absolute(self.workdir, "the sandbox working directory")
        for host, inside in self.readonly_binds:
            _require_absolute(host, "a read-only bind's host path")
            _require_absolute(inside, "a read-only bind's path inside the sandbox")
        hosts = [self.workdir, *(s.host_path for s in self.shares)]
        hosts += [inside for _, inside in self.readonly_binds]
        for inside, target in self.links:
            _require_absolute(inside, "a link's path inside the sandbox")
            _require_absolute(target, "a link's target")
            # A link made inside a bound host folder would be made on the host.
            if any(inside == h or h in inside.parents for h in hosts):
                raise ValueError(f"a link may not be made inside a host path: {inside}")
            if inside.parts[1:2] and inside.parts[1] in SYSTEM_TOPS:
                raise ValueError(f"a link may not be made in the system's {inside}")
            # bwrap would make it through the other link, in what that one names.
            if any(other in inside.parents for other, _ in self.links):
                raise ValueError(f"a link may not be made inside another link: {inside}")

    def describe(self) -> list[str]:
        """One line per grant, for ``#seal describe`` and logs."""
        lines = [
            f"network: {'allowed' if self.network else 'none'}",
            f"working directory (writable): {self.workdir}",
        ]
        lines += [f"shared ({share.mode}): {share.host_path}" for share in self.shares]
        lines += [f"read-only: {inside} <- {host}" for host, inside in self.readonly_binds]
        lines += [f"link: {inside} -> {target}" for inside, target in self.links]
        lines.append(self.limits.describe())
        return lines


def grants_summary(
    *,
    network: bool,
    shares: Sequence[tuple[Path, str, str | None]],
    limits: Limits,
    machine: str = "",
    javascript: bool = False,
) -> str:
    """What the sandbox grants a notebook, in one line.

    ``shares`` are ``(path granted, mode, path as the notebook wrote it)``;
    the written path is shown when it differs (None: not known).
    ``#seal describe`` stores the line in the notebook, so it says nothing
    of this machine; ``nbseal run`` adds ``machine`` (the uid kernels run as,
    whether memory is capped here).
    """
    grants = ["network (#seal allow network)"] if network else []
    if javascript:
        grants.append("outputs run in the page (#seal allow javascript)")
    for path, mode, written in shares:
        # What is granted is where the path leads (a link is followed once).
        note = "" if written in (None, str(path)) else f", written {written}"
        grants.append(f"share {path} ({mode}{note})")
    how = f"seccomp profile {PROFILE.name}, no capabilities"
    if limits == DEFAULT_LIMITS:
        how += f"; {limits.describe()}"
    else:
        grants.append(f"{limits.describe()} (#seal limit)")
    if machine:
        how += f"; {machine}"
    if not grants:
        return f"sealed: no network, no host files ({how})"
    return f"sealed; exceptions: {', '.join(grants)} ({how})"
