"""The interface every backend (uv, Debian, Guix, ...) implements.

A backend owns all that differs between kinds of environments: how a spec
is resolved and built, what part of the machine a resolution depends on,
where a built environment's kernel is and how it is started, what
``#seal describe`` says of it, what the user hears when it is unpinned and
what ``nbseal env gc`` removes besides store entries. The rest of nbseal asks
the backend (found by :mod:`nbseal.backends`'s registry) and never tests its
name, as jupyter_client's manager never asks which provisioner it has.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nbseal.backends.kernelspecs import KernelCommand
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress
from nbseal.sandbox.launch import Launcher
from nbseal.sandbox.policy import SandboxPolicy

__all__ = ["Backend", "strip_prefix"]


class Backend(abc.ABC):
    # What ``Lock.backend`` records; the registry finds the backend by it.
    name: str

    @abc.abstractmethod
    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        """Resolve ``spec`` into an exact lock (needs the package index)."""

    @abc.abstractmethod
    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        """Build the tree of ``lock`` at ``dest`` (which does not exist yet)."""

    @abc.abstractmethod
    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        """The kernel of the environment built at ``env_path`` (``kernel=wanted``, if named)."""

    @abc.abstractmethod
    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        """What starts this backend's kernels under ``policy``; plainly when not ``sealed``."""

    def interpreter_key(self, spec: EnvironmentSpec) -> str:
        """The host interpreter's part of a resolution's identity (its version).

        Empty by default: an environment that brings its own interpreters (a
        root file system, a Guix profile) resolves the same whatever the host runs.
        """
        return ""

    def interpreter_note(self, lock: Lock) -> str | None:
        """How the interpreter that builds ``lock`` here differs from the one that made
        it ("built with 3.11.2, locked with 3.11.7: patch release differs"), or None."""
        return None

    def upgraded(self, lock: Lock) -> Lock | None:
        """``lock`` in the current format, its versions unchanged; None when it is current."""
        return None

    def store_key(self, lock: Lock) -> str:
        """Where ``lock``'s built tree is stored: its key, unless what builds it here
        differs from what made the lock (the PyPI backend's interpreter)."""
        return lock.key

    def describe(self, lock: Lock | None) -> dict[str, Any] | None:
        """Fields this backend adds to its environment's row in ``#seal describe``.

        ``lock`` is None while the environment is not resolved yet. A ``source``
        field (where the packages come from) gets a column of its own.
        """
        return None

    def unpinned_note(self, env_name: str, instant: str) -> str:
        """What the user is told when ``env_name`` has no pin and is resolved at ``instant``."""
        return (
            f"environment {env_name!r} is resolved as of {instant}; "
            f"add `#seal pin {instant}` to freeze it"
        )

    def collect_garbage(self, locks: Sequence[Lock]) -> str | None:
        """Remove what only this backend keeps (beyond store entries) that ``locks`` no
        longer need; ``locks`` are the store's, of every backend. A line saying what
        was removed, or None when there was nothing to say."""
        return None


def strip_prefix(
    requirements: Sequence[str], prefix: str, foreign: Callable[[str], Exception]
) -> tuple[str, ...]:
    """What follows ``prefix`` in each requirement (``deb:NAME`` → ``NAME``).

    A requirement without ``prefix`` belongs to another backend: ``foreign(it)``
    is raised.
    """
    bodies = []
    for requirement in requirements:
        if not requirement.startswith(prefix):
            raise foreign(requirement)
        bodies.append(requirement[len(prefix) :])
    return tuple(bodies)
