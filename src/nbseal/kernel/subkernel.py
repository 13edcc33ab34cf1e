"""One real kernel behind the proxy: its process, its sockets, its lifecycle."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from nbseal.backends.kernelspecs import KernelCommand
from nbseal.errors import KernelStartError
from nbseal.kernel.session import WireSession
from nbseal.kernel.warm import resident_mb
from nbseal.kernel.wire import RawMessage, resign, split_frames
from nbseal.runtime_dirs import IPC_PORTS, write_ipc_connection_file
from nbseal.sandbox.launch import KernelProcess, Launcher, LaunchRequest, Relay
from nbseal.timeline import mark

__all__ = ["SubKernel", "answers_interrupt"]

log = logging.getLogger("nbseal.kernel")

# (sub-kernel, channel, message) for messages the proxy must route.
Handler = Callable[["SubKernel", str, RawMessage], None]

_SOCKET_TYPES = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER, "iopub": zmq.SUB}


# ipykernel's debugger (pydevd) otherwise warns about Python's frozen modules
# at every start, on iopub with no parent: noise in every frontend's log.
# Strings hash alike in every run (PYTHONHASHSEED=0): a set of strings, or
# anything ordered by their hashes, prints in the same order each time the
# notebook runs, instead of one order per process.
_KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONHASHSEED": "0"}

# A kernel that has not answered kernel_info this long and logged a traceback is failing.
_TRACEBACK_GRACE = 5.0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {_signal_name(-code)}"
    if code > 128:
        # A sandbox's launcher reports its kernel's death by signal N as 128+N.
        return f"killed by signal {_signal_name(code - 128)} (exit code {code})"
    return f"exit code {code}"


class SubKernel:
    """A kernel process of one environment, reached over ipc sockets.

    A kernel that binds only TCP (``command.transport == "tcp"``) is started
    behind a relay that serves the same ipc sockets; nothing else differs.

    The kernel shares the proxy's HMAC key, so messages pass both ways as raw
    frames. Requests the proxy makes on its own behalf (kernel_info at start,
    interrupt, shutdown) are answered here and never reach the frontend.
    """

    def __init__(
        self,
        *,
        env_name: str,
        command: KernelCommand,
        env_path: Path,
        session: WireSession,
        context: zmq.asyncio.Context,
        runtime_dir: Path,
        workdir: Path,
        launcher: Launcher,
        handler: Handler,
        index: int,
        private_key: bool = False,
    ) -> None:
        self.env_name = env_name
        self.command = command
        self.env_path = env_path
        self.session = session
        # The key on the kernel's own sockets. Shared with the proxy, messages
        # pass as raw frames; a kernel that may reach the network (and so the
        # frontend's TCP ports) gets its own key, and frames are re-signed.
        self.wire_session = (
            WireSession(secrets.token_hex(32).encode(), session.signature_scheme, "nbseal")
            if private_key
            else session
        )
        self.context = context
        self.launcher = launcher
        self.handler = handler
        self.workdir = workdir
        self.socket_dir = runtime_dir / f"k{index}"
        self.identity = f"nbseal-{os.getpid()}-{index}".encode()
        self.process: KernelProcess | None = None
        self.kernel_info: dict[str, Any] = {}
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._internal: dict[str, asyncio.Future[RawMessage]] = {}
        # Every request the proxy sent itself: what its kernel publishes in
        # answer (busy/idle, shutdown_reply on iopub) is not the frontend's.
        self._own_requests: collections.deque[str] = collections.deque(maxlen=64)
        self._iopub_ready = asyncio.Event()
        # The kernel's stdin ROUTER drops an input_request to a peer it has not
        # met yet, and the cell would then wait forever: set once ours has.
        self._stdin_connected = asyncio.Event()
        # Set when nbseal itself stops the kernel (its exit is then no news).
        self.stopping = False

    # -- lifecycle ----------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process is not None and not self.exited.done()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def resident_mb(self) -> float | None:
        """The kernel process's resident memory in MB (None once it is gone)."""
        if self.process is None or not self.alive:
            return None
        return resident_mb(self.launcher.kernel_pid(self.process))

    @property
    def launch_env(self) -> dict[str, str]:
        """The variables nbseal gives the kernel besides the launcher's own."""
        return {**_KERNEL_ENV, **self.command.env}

    @property
    def log_path(self) -> Path:
        return self.socket_dir / "kernel.log"

    async def start(self, timeout: float = 60.0) -> None:
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection_file = self.socket_dir / "connection.json"
        write_ipc_connection_file(
            connection_file,
            sockets=self.socket_dir / "s",
            key=self.wire_session.key.decode(),
            kernel_name=self.command.name,
            signature_scheme=self.wire_session.signature_scheme,
        )
        self._connect()
        relay = None
        kernel_file = connection_file
        if self.command.transport == "tcp":
            # The kernel binds TCP ports the relay picks and writes here; the
            # relay serves the ipc sockets above (see nbseal.sandbox.tcp_relay).
            kernel_file = self.socket_dir / "tcp-connection.json"
            relay = Relay(
                python=self.command.relay_python,
                ipc_connection=connection_file,
                tcp_connection=kernel_file,
                xeus_python=self.command.xeus_python,
            )
        request = LaunchRequest(
            self.command.render(str(kernel_file)),
            env=self.launch_env,
            cwd=self.workdir,
            env_path=self.env_path,
            socket_dir=self.socket_dir,
            log_path=self.log_path,
            relay=relay,
        )
        mark("proxy", f"environment {self.env_name}: launching {self.command.name}")
        try:
            self.process = await self.launcher.launch(request)
        except OSError as exc:
            await self.close()
            raise KernelStartError.failed_start(
                self.command.name,
                self.env_name,
                f"cannot be started: {exc}",
                hint="the environment may be damaged; remove it with `nbseal env gc`",
            ) from exc
        except BaseException:
            await self.close()  # open sockets would make context.term() hang
            raise
        mark("proxy", f"environment {self.env_name}: sandbox launched (pid {self.process.pid})")
        self._tasks.append(asyncio.create_task(self._watch_process()))
        try:
            await self._handshake(timeout)
        except BaseException:
            await self.shutdown(grace=0.5)
            raise
        finally:
            # Read once at start; the key must not stay on disk, even if
            # nbseal is killed later (the kernel keeps its copy in memory).
            for name in ("connection.json", "tcp-connection.json"):
                (self.socket_dir / name).unlink(missing_ok=True)

    async def _handshake(self, timeout: float) -> None:
        """Wait until the kernel answers kernel_info and its iopub delivers."""
        started = asyncio.get_running_loop().time()
        deadline = started + timeout
        while True:
            reply_task = asyncio.ensure_future(self.request("shell", "kernel_info_request", {}))
            waiting: set[asyncio.Future[Any]] = {reply_task, self.exited}
            done, _ = await asyncio.wait(waiting, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            if reply_task in done:
                self.kernel_info = reply_task.result().content(self.session)
                break
            reply_task.cancel()
            if self.exited.done():
                raise KernelStartError.failed_start(
                    self.command.name,
                    self.env_name,
                    f"exited at start ({_describe_exit(self.exited.result())})",
                    log=self._log_tail(),
                    hint="the output above is the kernel's own; fix the environment's spec",
                )
            now = asyncio.get_running_loop().time()
            if now > started + _TRACEBACK_GRACE and "Traceback (most recent" in self._log_tail(60):
                # Alive but failing (octave_kernel without octave): waiting longer only delays it.
                raise KernelStartError.failed_start(
                    self.command.name,
                    self.env_name,
                    "fails at start: it does not answer kernel_info and its log holds a traceback",
                    log=self._log_tail(),
                    hint="the output above is the kernel's own; its program may be missing "
                    "from the environment (e.g. octave_kernel needs deb:octave)",
                )
            if now > deadline:
                raise KernelStartError.failed_start(
                    self.command.name,
                    self.env_name,
                    f"did not answer within {timeout:.0f} s",
                    log=self._log_tail(),
                )
        # The reply's busy/idle on iopub proves the subscription is live. Kernels
        # without an iopub_welcome (IRkernel) may have published them before
        # we subscribed: ask again until one arrives.
        for _ in range(10):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._iopub_ready.wait(), timeout=0.2)
                break
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.request("shell", "kernel_info_request", {}), 1.0)
        try:
            await asyncio.wait_for(self._stdin_connected.wait(), timeout=5.0)
        except asyncio.TimeoutError:
            log.warning("the stdin socket of %s did not connect; input() may hang", self.env_name)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    async def _watch_process(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        if not self.exited.done():
            self.exited.set_result(code)

    def exit_description(self) -> str:
        return _describe_exit(self.exited.result() if self.exited.done() else None)

    async def interrupt(self) -> None:
        if not self.alive:
            return
        if self.command.interrupt_mode == "message" and answers_interrupt(self.kernel_info):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.request("control", "interrupt_request", {}), 5.0)
        elif self.process is not None:
            # The kernel's own host pid: SIGINT to a sandbox's launcher kills it.
            pid = self.launcher.kernel_pid(self.process)
            if pid is None:
                log.warning("cannot interrupt %s: its kernel pid is unknown", self.env_name)
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)

    async def shutdown(self, grace: float = 3.0, *, wait_for_exit: bool = True) -> None:
        """Ask the kernel to stop, then kill what is left; never raises.

        With ``wait_for_exit`` False, what is left is killed as soon as the
        kernel has answered (or ``grace`` has passed): for a kernel whose
        exit nobody can observe.
        """
        self.stopping = True
        if self.alive:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.request("control", "shutdown_request", {"restart": False}), grace
                )
            mark("proxy", f"environment {self.env_name}: shutdown_reply")
            if wait_for_exit:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.exited), grace)
            elif self.alive:
                mark("proxy", f"environment {self.env_name}: killed after its shutdown_reply")
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if not self.exited.done() and self.process is not None:
            self.exited.set_result(self.process.returncode or 0)
        await self.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for sock in self._sockets.values():
            sock.close(linger=0)
        self._sockets.clear()
        for waiter in self._internal.values():
            if not waiter.done():
                # Not cancel(): the waiting task is not being cancelled, its kernel is gone.
                waiter.set_exception(KernelStartError.closed(self.env_name))
        for path in self.socket_dir.glob("s-*"):
            path.unlink(missing_ok=True)

    # -- sockets ------------------------------------------------------------
    def _connect(self) -> None:
        base = f"ipc://{self.socket_dir / 's'}"
        for channel, kind in _SOCKET_TYPES.items():
            sock = self.context.socket(kind)
            sock.linger = 0
            if kind == zmq.DEALER:
                # shell and stdin must share one identity: input_request is
                # addressed to the identity that sent the execute_request.
                sock.setsockopt(zmq.IDENTITY, self.identity)
            else:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            if channel == "stdin":
                monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
                self._tasks.append(asyncio.create_task(self._watch_handshake(sock, monitor)))
            sock.connect(f"{base}-{IPC_PORTS[channel]}")
            self._sockets[channel] = sock
            self._tasks.append(asyncio.create_task(self._read(channel, sock)))

    async def _watch_handshake(self, sock: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket) -> None:
        try:
            await monitor.recv_multipart()
            self._stdin_connected.set()
        finally:
            with contextlib.suppress(zmq.ZMQError):
                sock.disable_monitor()
            monitor.close(linger=0)

    def send(self, channel: str, frames: list[bytes]) -> None:
        sock = self._sockets.get(channel)
        if sock is None:
            raise KernelStartError.is_closed(self.env_name)
        if self.wire_session is not self.session:
            frames = resign(self.wire_session, frames)
        sock.send_multipart([b"<IDS|MSG>", *frames], copy=False)

    async def request(self, channel: str, msg_type: str, content: dict[str, Any]) -> RawMessage:
        """Send a request of the proxy's own and wait for its reply."""
        msg = self.wire_session.msg(msg_type, content)
        waiter: asyncio.Future[RawMessage] = asyncio.get_running_loop().create_future()
        msg_id = msg["header"]["msg_id"]
        self._internal[msg_id] = waiter
        self._own_requests.append(msg_id)
        frames = self.wire_session.serialize(msg)
        try:
            self._sockets[channel].send_multipart(frames)
            return await waiter
        finally:
            self._internal.pop(msg_id, None)

    async def _read(self, channel: str, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            try:
                message = split_frames(frames)
                if self.wire_session is not self.session:
                    if not message.verify(self.wire_session):
                        log.warning("dropped a badly signed message from %s", self.env_name)
                        continue
                    message = RawMessage(message.idents, resign(self.session, message.frames))
                if not self._consume_internal(channel, message):
                    self.handler(self, channel, message)
            except Exception:
                log.exception("dropped a malformed message from kernel %s", self.env_name)

    def _consume_internal(self, channel: str, message: RawMessage) -> bool:
        parent_id = message.parent(self.session).get("msg_id", "")
        if channel == "iopub":
            if message.header(self.session).get("msg_type") == "iopub_welcome":
                self._iopub_ready.set()
                return True
            if parent_id and parent_id in self._own_requests:
                self._iopub_ready.set()
                return True
            return False
        waiter = self._internal.get(parent_id)
        if waiter is None:
            return parent_id in self._own_requests  # a late answer to a request given up on
        if not waiter.done():
            waiter.set_result(message)
        return True


def answers_interrupt(kernel_info: dict[str, Any]) -> bool:
    """Whether a kernel answers ``interrupt_request`` (protocol 5.3, 2017): an older
    one (ipykernel before 5, as a 2018 pin on CPython 3.6 gets) is sent SIGINT."""
    version = str(kernel_info.get("protocol_version", ""))
    try:
        numbers = tuple(int(p) for p in version.split("."))
    except ValueError:
        return True  # none said: ask as the kernelspec says
    return numbers >= (5, 3)
