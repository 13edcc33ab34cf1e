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
from pathlib import Path

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
    network: bool = False
    # Outputs reach the page as they are (#seal allow javascript).
    javascript: bool = False
    shares: dict[Path, ShareMode] = field(default_factory=dict)
    # NAME in the working directory -> its file in the data store.
    data: dict[str, Path] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS

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
        )

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
        self.shares[self.share_path(directive)] = "rw" if directive.mode == "rw" else "ro"

    def add_data(self, name: str, stored: Path) -> None:
        """Show ``stored`` as ``name`` in the working directory (a link, placed safely)."""
        identity = sandbox_identity() if self.sealed else None
        owner = (identity.host_uid, identity.host_gid) if identity else (os.getuid(), os.getgid())
        place_link(self.workdir, name, stored, owner=owner)
        self.data[name] = stored

    def clear_data_mounts(self) -> None:
        """A kept working directory keeps what the notebook wrote, not nbseal's data links."""
        for name, stored in self.data.items():
            remove_link(self.workdir, name, stored)
