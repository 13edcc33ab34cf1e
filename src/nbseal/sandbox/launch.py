"""Where a sub-kernel process lives.

A :class:`Launcher` turns a kernel command into a running process. The direct
launcher runs it as a child of the proxy; a sandboxing launcher wraps the same
command (:mod:`.bwrap`, :mod:`.rootfs`, :mod:`.guix`). The proxy does not
know which one it has; a backend says which one its kernels need.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DirectLauncher",
    "LaunchRequest",
    "Launcher",
    "Relay",
    "relay_script",
    "spawn_logged",
]


def relay_script() -> Path:
    """The host file of :mod:`nbseal.sandbox.tcp_relay` (a standalone script)."""
    return Path(__file__).with_name("tcp_relay.py")


@dataclass(frozen=True)
class Relay:
    """A kernel that binds only TCP, started behind ``tcp_relay.py``.

    ``python`` runs the relay (an interpreter the kernel's environment holds);
    the relay reads ``ipc_connection`` (the file nbseal connects by) and
    writes ``tcp_connection`` (the kernel's own: same key, ports on the
    loopback). ``xeus_python``: interrupts reach xeus-python's main thread as
    KeyboardInterrupt instead of as SIGINT, on which it exits.
    """

    python: str
    ipc_connection: Path
    tcp_connection: Path
    xeus_python: bool = False

    def wrap(self, script: str, argv: Sequence[str]) -> list[str]:
        """``argv`` started by the relay at ``script`` (its path where the kernel runs)."""
        relay = [
            self.python,
            script,
            "--ipc-connection",
            str(self.ipc_connection),
            "--tcp-connection",
            str(self.tcp_connection),
        ]
        if self.xeus_python:
            relay.append("--xeus-python-interrupt")
        return [*relay, "--", *argv]


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
        relay: Relay | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.env_path = env_path
        self.socket_dir = socket_dir
        self.log_path = log_path
        self.relay = relay

    def command(self, relay_script: str) -> list[str]:
        """The program to start: the kernel, or the relay (at ``relay_script``) before it."""
        if self.relay is None:
            return list(self.argv)
        return self.relay.wrap(relay_script, self.argv)


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
        # A TCP-only kernel runs behind the relay here too: the proxy speaks ipc
        # to every kernel, and the relay stops its kernel when this pid goes.
        argv = request.command(str(relay_script()))
        return await spawn_logged(argv, env=env, cwd=request.cwd, log_path=request.log_path)


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
