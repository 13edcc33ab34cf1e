"""Drive a real kernel in a real bubblewrap sandbox from synchronous tests.

The kernel is an nbseal :class:`SubKernel` started with :class:`BwrapLauncher`,
as the proxy starts it, on an event loop that lives in a thread of its own for
as long as the kernels it started: bwrap's --die-with-parent follows the thread
that spawned it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import zmq.asyncio

from nbseal.backends.kernelspecs import KernelCommand, find_kernel_command
from nbseal.kernel.session import WireSession
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.wire import RawMessage
from nbseal.sandbox import BwrapLauncher, SandboxPolicy
from nbseal.sandbox.seccomp import PROFILE, SeccompProfile

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; coroutines run there and are awaited here."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Outcome:
    """What one execute_request produced."""

    status: str = ""
    stdout: str = ""
    ename: str = ""
    evalue: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Pending:
    outcome: Outcome = field(default_factory=Outcome)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    replied: asyncio.Event = field(default_factory=asyncio.Event)


class SealedKernel:
    """One ipykernel of an environment, started in a sandbox shaped by ``policy``."""

    def __init__(
        self,
        loop: LoopThread,
        env_path: Path,
        policy: SandboxPolicy,
        runtime_dir: Path,
        seccomp: SeccompProfile = PROFILE,
    ) -> None:
        self.loop = loop
        self.env_path = env_path
        self.policy = policy
        self.runtime_dir = runtime_dir
        self.launcher = BwrapLauncher(policy, seccomp=seccomp)
        self.session = WireSession(key=uuid.uuid4().hex.encode(), username="test")
        self._pending: dict[str, _Pending] = {}
        self.kernel: SubKernel | None = None
        self._context: zmq.asyncio.Context | None = None

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> SealedKernel:
        try:
            self.loop.run(self._start())
        except BaseException:
            # SubKernel.start leaves its sockets open when the launcher raises
            # anything but OSError; a context with open sockets never terms.
            self.loop.run(self._close())
            raise
        return self

    async def _close(self) -> None:
        if self.kernel is not None:
            await self.kernel.shutdown(grace=2.0)
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def command(self) -> KernelCommand:
        return find_kernel_command(self.env_path)

    async def _start(self) -> None:
        self._context = zmq.asyncio.Context()
        self.kernel = SubKernel(
            env_name="sealed",
            command=self.command(),
            env_path=self.env_path,
            session=self.session,
            context=self._context,
            runtime_dir=self.runtime_dir,
            workdir=self.policy.workdir,
            launcher=self.launcher,
            handler=self._handle,
            index=len(list(self.runtime_dir.glob("k*"))) + 1,
        )
        await self.kernel.start(timeout=60)

    def stop(self) -> None:
        self.loop.run(self._close())
        if self.kernel is not None:
            # Whatever a failed test left alive must not outlive the run.
            for pid in processes_mentioning(str(self.connection_file)):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    @property
    def sub(self) -> SubKernel:
        assert self.kernel is not None
        return self.kernel

    @property
    def bwrap_pid(self) -> int:
        assert self.sub.process is not None
        return self.sub.process.pid

    def kernel_pid(self) -> int | None:
        assert self.sub.process is not None
        return self.launcher.kernel_pid(self.sub.process)

    @property
    def connection_file(self) -> Path:
        return self.sub.socket_dir / "connection.json"

    # -- messages -----------------------------------------------------------
    def _handle(self, kernel: SubKernel, channel: str, message: RawMessage) -> None:
        parent = message.parent(self.session).get("msg_id", "")
        pending = self._pending.get(parent)
        if pending is None:
            return
        msg_type = message.header(self.session).get("msg_type", "")
        content = message.content(self.session)
        out = pending.outcome
        if channel == "shell" and msg_type == "execute_reply":
            out.status = str(content.get("status", ""))
            pending.replied.set()
        elif channel == "iopub":
            out.messages.append({"msg_type": msg_type, "content": content})
            if msg_type == "status" and content.get("execution_state") == "idle":
                pending.idle.set()
            elif msg_type == "execute_input":
                pending.started.set()
            elif msg_type == "stream" and content.get("name") == "stdout":
                out.stdout += str(content.get("text", ""))
            elif msg_type == "error":
                out.ename = str(content.get("ename", ""))
                out.evalue = str(content.get("evalue", ""))

    def _send_execute(self, code: str) -> _Pending:
        msg = self.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "allow_stdin": False},
        )
        pending = _Pending()
        self._pending[msg["header"]["msg_id"]] = pending
        frames = self.session.serialize(msg)
        self.sub.send("shell", frames[1:])  # send() adds the delimiter itself
        return pending

    async def _wait(self, pending: _Pending, timeout: float) -> Outcome:
        async def both() -> None:
            await pending.idle.wait()
            await pending.replied.wait()

        await asyncio.wait_for(both(), timeout)
        return pending.outcome

    def execute(self, code: str, timeout: float = 60) -> Outcome:
        async def run() -> Outcome:
            return await self._wait(self._send_execute(code), timeout)

        return self.loop.run(run(), timeout + 5)

    def execute_nowait(self, code: str) -> None:
        """Send ``code`` and do not wait: for cells that end the kernel."""

        async def send() -> None:
            self._send_execute(code)

        self.loop.run(send())

    def wait_exit(self, timeout: float = 30) -> int:
        """The launched process's exit status, once it has ended."""

        async def wait() -> int:
            return await asyncio.wait_for(asyncio.shield(self.sub.exited), timeout)

        return self.loop.run(wait(), timeout + 5)

    def value(self, expression: str) -> str:
        """``print(expression)`` in the kernel; fail the test on any error."""
        out = self.execute(f"print({expression})")
        assert out.status == "ok", (out.ename, out.evalue)
        return out.stdout.strip()

    def execute_interrupted(self, code: str, interrupt: str, timeout: float = 60) -> Outcome:
        """Run ``code``, and once it runs, interrupt it by ``message`` or ``signal``."""

        async def run() -> Outcome:
            pending = self._send_execute(code)
            await asyncio.wait_for(pending.started.wait(), timeout)
            await asyncio.sleep(0.5)  # let the cell reach its blocking call
            if interrupt == "message":
                await self.sub.interrupt()
            else:
                pid = self.kernel_pid()
                assert pid is not None
                os.kill(pid, signal.SIGINT)
            return await self._wait(pending, timeout)

        return self.loop.run(run(), timeout + 10)


def processes_mentioning(text: str) -> list[int]:
    """Host pids whose command line contains ``text`` (no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
