"""Where a sub-kernel process lives.

A :class:`Launcher` turns a kernel command into a running process. The direct
launcher runs it as a child of the proxy; a sandboxing launcher wraps the same
command (see :mod:`nbseal.sandbox`). The proxy does not know which one it has.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["DirectLauncher", "LaunchRequest", "Launcher", "spawn_logged"]


class LaunchRequest:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        env_path: Path,
        socket_dir: Path,
        log_path: Path,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.env_path = env_path
        self.socket_dir = socket_dir
        self.log_path = log_path


class Launcher(abc.ABC):
    """Starts a kernel process; signals go to the returned process's own pid."""

    sealed: bool = False

    @abc.abstractmethod
    async def launch(self, request: LaunchRequest) -> asyncio.subprocess.Process: ...

    def kernel_pid(self, process: asyncio.subprocess.Process) -> int | None:
        """The kernel's own host pid (signals go there); the process itself by default."""
        return process.pid if process.returncode is None else None


class DirectLauncher(Launcher):
    """Run the kernel as a plain child process (no isolation)."""

    async def launch(self, request: LaunchRequest) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env.update(request.env)
        # ipykernel exits when this pid goes away, so a killed proxy leaves no orphans.
        env["JPY_PARENT_PID"] = str(os.getpid())
        return await spawn_logged(request.argv, env=env, cwd=request.cwd, log_path=request.log_path)


async def spawn_logged(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
) -> asyncio.subprocess.Process:
    """Start a kernel process in a session of its own, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            cwd=str(cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
