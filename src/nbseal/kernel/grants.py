"""What a notebook's kernels may see: the sandbox's grants and the declared data.

The notebook opens its sandbox only through directives (``#seal allow
network``, ``#seal share``) and puts data in it with ``#seal data``; this
module keeps that state and turns it into a :class:`SandboxPolicy`, which an
environment's backend turns into a launcher (``Backend.launcher``). A kernel
started under other grants is restarted by the proxy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nbseal.directives import ShareDirective
from nbseal.errors import DirectiveError
from nbseal.sandbox import SandboxPolicy, Share
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.limits import DEFAULT_LIMITS, Limits
from nbseal.sandbox.policy import UNSEALED_SUMMARY, ShareMode, grants_summary
from nbseal.sandbox.workdir import place_link, remove_link

__all__ = ["Grants"]


@dataclass
class Grants:
    # The kernels' shared, writable working directory (their cwd).
    workdir: Path
    # Where relative paths in directives start: the notebook's folder.
    notebook_dir: Path
    sealed: bool = True
    # The working directory outlives the proxy (nbseal run --keep-workdir).
    workdir_kept: bool = False
    network: bool = False
    # Outputs reach the page as they are (#seal allow javascript).
    javascript: bool = False
    shares: dict[Path, ShareMode] = field(default_factory=dict)
    # NAME in the working directory -> its file in the data store.
    data: dict[str, Path] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    # Links made in the working directory (NAME -> target), removed at the end.
    placed: dict[str, Path] = field(default_factory=dict)
    # Links beside it, for names that start with '..': inside the sandbox only.
    beside: dict[Path, Path] = field(default_factory=dict)

    def policy(self) -> SandboxPolicy:
        shares = tuple(Share(path, mode) for path, mode in sorted(self.shares.items()))
        # Each data file at its own store path; the working directory links to it.
        binds = tuple((path, path) for path in sorted(set(self.data.values())))
        return SandboxPolicy(
            workdir=self.workdir,
            network=self.network,
            shares=shares,
            readonly_binds=binds,
            limits=self.limits,
            links=tuple(sorted(self.beside.items())),
        )

    def traceless(self) -> bool:
        """Whether nothing a kernel does outlives the proxy (its sandbox and scratch workdir).

        Sealed, without the network, without a writable share, and the working
        directory removed with the proxy: what a kernel still does as it exits
        (atexit handlers, its history) lands where nobody will look.
        """
        writable = "rw" in self.shares.values()
        return self.sealed and not (self.network or writable or self.workdir_kept)

    def summary(self) -> str:
        """One line for ``#seal describe`` and logs: sealed or not, and every exception."""
        if not self.sealed:
            return UNSEALED_SUMMARY
        shares = [(path, mode, None) for path, mode in sorted(self.shares.items())]
        return grants_summary(
            network=self.network, shares=shares, limits=self.limits, javascript=self.javascript
        )

    def share_path(self, directive: ShareDirective) -> Path:
        """The host path ``#seal share`` names; raises when it does not exist."""
        path = (self.notebook_dir / Path(directive.path).expanduser()).resolve()
        if not path.exists():
            raise DirectiveError(
                f"{directive.path} does not exist (as {path})",
                line=directive.line,
                text=f"#seal share {directive.path} {directive.mode}",
                expected="an existing file or folder, absolute or relative to the notebook",
            )
        return path

    def share(self, directive: ShareDirective) -> None:
        """Grant the path; a relative one also appears where the notebook's cells look for it."""
        path = self.share_path(directive)
        self.shares[path] = "rw" if directive.mode == "rw" else "ro"
        written = PurePosixPath(directive.path)
        if not written.is_absolute() and not directive.path.startswith("~"):
            self._show(_normalised(directive.path), path)

    def add_data(self, name: str, stored: Path) -> None:
        """Show ``stored`` as ``name`` relative to the working directory (a link, placed safely)."""
        self._show(name, stored)
        self.data[name] = stored

    def _show(self, name: str, target: Path) -> None:
        if name in ("", "."):
            return  # the notebook's own folder: its files are data, not a link
        if name == ".." or name.startswith("../"):
            # Beside the working directory: a link bwrap makes inside the sandbox.
            inside = Path(os.path.normpath(self.workdir / name))
            if inside in (self.workdir, *self.workdir.parents) or self.workdir in inside.parents:
                return  # the working directory itself, or inside it after all
            # Never one link inside another: bwrap would make it in the target.
            if any(inside in other.parents for other in self.beside):
                self.beside = {o: t for o, t in self.beside.items() if inside not in o.parents}
            if not any(other in inside.parents for other in self.beside):
                self.beside[inside] = target
            return
        identity = sandbox_identity() if self.sealed else None
        owner = (identity.host_uid, identity.host_gid) if identity else (os.getuid(), os.getgid())
        place_link(self.workdir, name, target, owner=owner)
        self.placed[name] = target

    def clear_data_mounts(self) -> None:
        """A kept working directory keeps what the notebook wrote, not nbseal's links."""
        for name, target in self.placed.items():
            remove_link(self.workdir, name, target)


def _normalised(path: str) -> str:
    """``./data/`` -> ``data``, ``../a/./b`` -> ``../a/b``: how a link is named."""
    return os.path.normpath(path) if path not in ("", ".") else "."
