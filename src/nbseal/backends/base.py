"""The interface every backend (uv, Debian, Guix, ...) implements."""

from __future__ import annotations

import abc
from pathlib import Path

from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec
from nbseal.progress import Progress

__all__ = ["Backend"]


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        """Resolve ``spec`` into an exact lock (needs the package index)."""

    @abc.abstractmethod
    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        """Build the tree of ``lock`` at ``dest`` (which does not exist yet)."""
