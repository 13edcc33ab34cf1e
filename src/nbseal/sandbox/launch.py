"""Where a sub-kernel process lives.

A :class:`Launcher` turns a kernel command into a running process. The direct
launcher runs it as a child of the proxy; a sandboxing launcher wraps the same
command (:mod:`.bwrap`, :mod:`.rootfs`, :mod:`.guix`). The proxy does not
know which one it has; a backend says which one its kernels need.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "DirectLauncher",
    "KernelProcess",
    "LaunchRequest",
    "Launcher",
    "PopenProcess",
    "Relay",
    "relay_script",
    "spawn_logged",
]


class KernelProcess(Protocol):
    """What nbseal uses of a started kernel process (asyncio's Process has it all)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


class PopenProcess:
    """A process started with :class:`subprocess.Popen` (the head start's), awaited
    as asyncio's Process is: its exit is seen through a pidfd, without a thread."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._exited: asyncio.Future[int] | None = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    async def wait(self) -> int:
        code = self._popen.poll()
        if code is not None:
            return code
        if self._exited is None:
            self._exited = self._watch(asyncio.get_running_loop())
        return await asyncio.shield(self._exited)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[int]:
        exited: asyncio.Future[int] = loop.create_future()

        def done(code: int) -> None:
            if not exited.done():
                exited.set_result(code)

        try:
            fd = os.pidfd_open(self._popen.pid)
        except OSError:  # no pidfd (Linux < 5.3): a thread waits instead
            waiter = threading.Thread(
                target=lambda: loop.call_soon_threadsafe(done, self._popen.wait()),
                name=f"wait-{self._popen.pid}",
                daemon=True,
            )
            waiter.start()
            return exited

        def readable() -> None:
            code = self._popen.poll()
            if code is not None:
                loop.remove_reader(fd)
                os.close(fd)
                done(code)

        loop.add_reader(fd, readable)
        return exited


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
    async def launch(self, request: LaunchRequest) -> KernelProcess: ...

    def kernel_pid(self, process: KernelProcess) -> int | None:
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
