"""Let a kernel that binds only TCP be reached over ipc sockets from outside its sandbox.

nbseal talks to each kernel over ZMQ ``ipc`` sockets in a directory bound into
the sandbox: the sandbox has its own network namespace, so the proxy outside
cannot reach a TCP port inside. Some kernels (xeus-python and the other xeus
kernels) only bind TCP. This script runs inside the sandbox (and, unsealed,
as a plain child of the proxy), as the kernel's parent, with the
environment's own Python and nothing but the standard library:

* it picks five free ports on 127.0.0.1 (the sandbox's private loopback),
  writes a TCP connection file with the ipc file's key, and starts the kernel
  with it;
* for each channel it listens on the Unix socket the ipc connection file names
  (``<ip>-<port>``, jupyter_client's convention) and pumps the bytes of every
  accepted connection to and from the kernel's TCP port. ZMQ's ipc transport
  and its TCP transport carry the same ZMTP byte stream, so the pump needs no
  knowledge of ZMQ: the two ends greet, authenticate and frame messages as if
  they were directly connected, whatever their socket types (ROUTER/DEALER,
  PUB/SUB, whose subscriptions travel upstream in the same stream, REQ/REP).
  A Unix connection is not read until its TCP connection exists (the kernel
  may bind after nbseal connects); asyncio sets TCP_NODELAY, without which
  small ZMTP frames would wait for Nagle's algorithm;
* it forwards SIGINT, SIGTERM and SIGHUP to the kernel, exits with the
  kernel's status (128+N for death by signal N) and removes its sockets and
  the TCP connection file.

With ``--xeus-python-interrupt`` SIGINT is not forwarded as a signal:
xeus-python exits on SIGINT (xeus-python issue #527) and answers
``interrupt_request`` without stopping anything. The kernel (``PYTHON -m
xpython_launcher ...``) is then started through this same file, which adds a
thread to it: for each interrupt the relay writes to a pipe, the thread sends
SIGUSR1 (bound to Python's KeyboardInterrupt) to the main thread if that is
running a cell, and does nothing if the kernel is idle (there a signal would
stop its loop).

    python tcp_relay.py --ipc-connection FILE --tcp-connection FILE
        [--xeus-python-interrupt] -- KERNEL ARGV...

``{connection_file}`` in the kernel's argv is replaced by the TCP file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import os
import runpy
import signal
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from types import FrameType
from typing import Any

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
_XEUS_INTERRUPT = "--xeus-python-interrupt"
_XEUS_KERNEL = "--xeus-python-kernel"  # internal: the kernel's side of the above
_PR_SET_PDEATHSIG = 1


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (the loopback is the sandbox's own when sealed)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_private(path: str, info: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the key
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=1)


def _death_signal() -> Callable[[], None] | None:
    """A function for the kernel, between fork and exec: SIGKILL it when the relay dies.

    Looked up before the fork: a child of a threaded process should not load
    libraries. ``None`` where there is no prctl (the kernel then dies with the
    sandbox, or by nbseal's kill of the process group).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return set_death_signal


class _End(asyncio.Protocol):
    """One socket of a bridged pair: what it receives is written to its peer."""

    def __init__(self, bridges: set[_End], on_made: Callable[[], None] | None = None) -> None:
        self.bridges = bridges
        self.on_made = on_made
        self.transport: asyncio.Transport | None = None
        self.peer: _End | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.bridges.add(self)
        if self.on_made is not None:
            self.on_made()

    def link(self, peer: _End) -> None:
        self.peer, peer.peer = peer, self

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    # Flow control: a peer that cannot keep up stops reading on this side.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def eof_received(self) -> bool:
        return False  # ZMTP has no half-close: close both sides

    def connection_lost(self, exc: Exception | None) -> None:
        self.bridges.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Relay:
    """The five Unix listeners and the byte pumps behind them."""

    def __init__(self, ipc: dict[str, Any], tcp: dict[str, Any]) -> None:
        self.paths = {ch: f"{ipc['ip']}-{ipc[ch + '_port']}" for ch in CHANNELS}
        self.ports = {ch: int(tcp[ch + "_port"]) for ch in CHANNELS}
        self.kernel_gone = False
        self._servers: list[asyncio.AbstractServer] = []
        self._ends: set[_End] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        for channel, path in self.paths.items():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # left by an earlier kernel of the same directory
            server = await loop.create_unix_server(
                functools.partial(self._accepted, self.ports[channel]), path=path
            )
            self._servers.append(server)

    def _accepted(self, port: int) -> _End:
        unix = _End(self._ends, on_made=lambda: self._start(self._connect(unix, port)))
        return unix

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, unix: _End, port: int) -> None:
        assert unix.transport is not None
        # Not yet linked, the Unix side reads nothing: bytes wait in its socket.
        unix.transport.pause_reading()
        loop = asyncio.get_running_loop()
        # The peer may connect before the kernel has bound its port: retry
        # while the kernel lives.
        while not unix.transport.is_closing():
            try:
                _, tcp = await loop.create_connection(
                    functools.partial(_End, self._ends), "127.0.0.1", port
                )
            except OSError:
                if self.kernel_gone:
                    break
                await asyncio.sleep(0.02)
                continue
            unix.link(tcp)
            unix.transport.resume_reading()
            return
        unix.close()

    def close(self) -> None:
        self.kernel_gone = True
        for server in self._servers:
            server.close()
        for end in list(self._ends):
            end.close()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                os.unlink(path)


async def _watch_parent(parent: int, kernel: asyncio.subprocess.Process) -> None:
    """Unsealed, the relay's parent is the proxy: a kernel outliving it is stopped."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    with contextlib.suppress(ProcessLookupError):
        kernel.terminate()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(kernel.wait(), 5.0)
            return
        kernel.kill()


async def relay(args: argparse.Namespace, argv: list[str]) -> int:
    with open(args.ipc_connection) as handle:
        ipc = json.load(handle)
    ports = _free_ports(len(CHANNELS))
    tcp = {**ipc, "transport": "tcp", "ip": "127.0.0.1"}
    tcp.update({f"{channel}_port": ports[i] for i, channel in enumerate(CHANNELS)})
    _write_private(args.tcp_connection, tcp)
    argv = [arg.replace("{connection_file}", args.tcp_connection) for arg in argv]

    loop = asyncio.get_running_loop()
    bridge = Relay(ipc, tcp)
    await bridge.listen()
    interrupt_write = -1
    pass_fds: tuple[int, ...] = ()
    if args.xeus_python_interrupt:
        interrupt_read, interrupt_write = os.pipe()
        pass_fds = (interrupt_read,)
        argv = [
            argv[0],
            os.path.abspath(__file__),
            _XEUS_KERNEL,
            str(interrupt_read),
            *argv[1:],
        ]
    try:
        kernel = await asyncio.create_subprocess_exec(
            *argv, pass_fds=pass_fds, preexec_fn=_death_signal()
        )
    except BaseException:
        bridge.close()
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)

    def forward(signum: int) -> None:
        if signum == signal.SIGINT and interrupt_write >= 0:
            with contextlib.suppress(OSError):
                os.write(interrupt_write, b"\x03")
            return
        with contextlib.suppress(ProcessLookupError):
            kernel.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, forward, signum)
    parent = os.environ.get("JPY_PARENT_PID", "")
    watcher = None
    if parent.isdigit() and int(parent) > 1:
        watcher = asyncio.ensure_future(_watch_parent(int(parent), kernel))
    try:
        code = await kernel.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        bridge.close()
        if interrupt_write >= 0:
            os.close(interrupt_write)
        with contextlib.suppress(OSError):
            os.unlink(args.tcp_connection)
    return code if code >= 0 else 128 - code


# ---------------------------------------------------------------------------
# kernel side of --xeus-python-interrupt
# ---------------------------------------------------------------------------
def _running_a_cell(frame: FrameType | None) -> bool:
    """Whether a thread at ``frame`` runs a cell's code: xeus-python (raw or
    IPython mode, 0.15 to 0.19 at least) compiles each cell to a file in
    ``$TMPDIR/xpython_<pid>/``. Anywhere else the main thread may be idle in
    the kernel's own loop, where a KeyboardInterrupt or EINTR would stop it.
    """
    folder = f"xpython_{os.getpid()}"
    while frame is not None:
        if os.path.basename(os.path.dirname(frame.f_code.co_filename)) == folder:
            return True
        frame = frame.f_back
    return False


def _interrupter(fd: int, main: int) -> None:
    """For each byte on ``fd``, interrupt the main thread if it runs a cell."""
    while os.read(fd, 1):  # empty when the relay is gone
        if _running_a_cell(sys._current_frames().get(main)):
            # A real signal, to end a blocking call (sleep, I/O) with EINTR.
            signal.pthread_kill(main, signal.SIGUSR1)


def xeus_python_kernel(fd: int, argv: Sequence[str]) -> None:
    """Run ``-m MODULE ARGS...`` (xeus-python's launcher) here, interruptible through ``fd``."""
    if len(argv) < 2 or argv[0] != "-m":
        raise SystemExit(f"tcp_relay: {_XEUS_INTERRUPT} needs PYTHON -m MODULE, got {argv}")
    os.set_inheritable(fd, False)
    # Python's own handler, which raises KeyboardInterrupt in the main thread.
    # xeus-python replaces SIGINT's handler with one that exits; not this one.
    signal.signal(signal.SIGUSR1, signal.default_int_handler)
    helper = threading.Thread(
        target=_interrupter, args=(fd, threading.get_ident()), name="nbseal-interrupt", daemon=True
    )
    helper.start()
    # As with ``python -m``: the working directory first, not this file's folder.
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.getcwd()
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


def main(args_list: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if args_list is None else args_list)
    if args_list[:1] == [_XEUS_KERNEL]:
        xeus_python_kernel(int(args_list[1]), args_list[2:])
        return 0
    if "--" not in args_list:
        print(__doc__, file=sys.stderr)
        return 2
    split = args_list.index("--")
    parser = argparse.ArgumentParser(prog="tcp_relay.py")
    parser.add_argument("--ipc-connection", required=True)
    parser.add_argument("--tcp-connection", required=True)
    parser.add_argument(_XEUS_INTERRUPT, action="store_true")
    args = parser.parse_args(args_list[:split])
    argv = args_list[split + 1 :]
    if not argv:
        parser.error("no kernel command after --")
    return asyncio.run(relay(args, argv))


if __name__ == "__main__":
    sys.exit(main())
