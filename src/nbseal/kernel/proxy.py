"""The nbseal proxy kernel: speaks Jupyter to the frontend, relays to real kernels.

Messages from the frontend are dispatched by type (as in ipykernel's
``kernelbase``); most are forwarded as raw frames to the sub-kernel of the
current environment, and its replies and iopub traffic come back unchanged
except for the few fields the proxy owns (the execution count). A handler's
exception is logged and answered; it never takes the proxy down, and every
request the proxy answers itself is framed by ``busy`` and ``idle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import re
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from nbseal import __version__
from nbseal.backends import backend_for, backend_for_requirements
from nbseal.datastore import DataStore
from nbseal.directives import (
    HELP_TEXT,
    AllowDirective,
    DataDirective,
    DescribeDirective,
    Directive,
    EnvDefineDirective,
    EnvSwitchDirective,
    HelpDirective,
    LimitDirective,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
    parse_cell,
)
from nbseal.environments import realize, resolve
from nbseal.errors import DirectiveError, KernelDiedError, KernelStartError, NbsealError
from nbseal.kernel.comms import CONTROL_TARGET, ControlFanOut, StateAnswer, merge_comm_infos
from nbseal.kernel.display import error_content, progress_bundle
from nbseal.kernel.grants import Grants
from nbseal.kernel.session import WireSession
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.wire import RawMessage, split_frames
from nbseal.lock import Lock
from nbseal.notebook import code_sources, lock_output, read_notebook_json, stored_locks
from nbseal.plan import (
    DEFAULT_ENV_NAME,
    Declaration,
    EnvironmentSpec,
    NotebookPlan,
    declare_env,
    declare_script,
    default_declaration,
    limits_after,
    notebook_pin_after,
    plan_notebook,
)
from nbseal.progress import Progress, ProgressEvent
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans
from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.limits import DEFAULT_LIMITS
from nbseal.sources import UNRESTRICTED, SourcePolicy
from nbseal.store import BuiltEnvironment, EnvironmentStore
from nbseal.uv import uv_cache_dir

__all__ = ["ProxyConfig", "ProxyKernel"]

log = logging.getLogger("nbseal.kernel")

PROTOCOL_VERSION = "5.3"
UNSEALED_MIME = "application/vnd.nbseal.unsealed+json"
# Only the proxy writes nbseal's own MIME types (locks, progress, describe):
# a sub-kernel's output carrying one is a forgery, and its bundle is dropped.
_NBSEAL_MIME_PREFIX = "application/vnd.nbseal."
_OUTPUT_TYPES = frozenset({"display_data", "update_display_data", "execute_result"})
# A content frame worth decoding: it names nbseal, or escapes characters
# (JSON may spell a key as "vnd\u002enbseal").
_MAY_FORGE = re.compile(rb"(?i)nbseal|\\u")

# (channel, message, header) -> None; the dispatch tables hold these.
Handler = Callable[[str, RawMessage, dict[str, Any]], None]

_PYTHON_LANGUAGE_INFO: dict[str, Any] = {
    "name": "python",
    "version": platform.python_version(),
    "mimetype": "text/x-python",
    "codemirror_mode": {"name": "ipython", "version": 3},
    "pygments_lexer": "ipython3",
    "nbconvert_exporter": "python",
    "file_extension": ".py",
}

# Empty answers for requests that arrive when no sub-kernel can answer them.
_FALLBACK_REPLIES: dict[str, dict[str, Any]] = {
    "complete_request": {"matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}},
    "inspect_request": {"found": False, "data": {}, "metadata": {}},
    "is_complete_request": {"status": "unknown"},
    "history_request": {"history": []},
    "comm_info_request": {"comms": {}},
}


@dataclass
class EnvironmentSlot:
    """An environment of the notebook and, once started, its kernel."""

    # What the notebook wrote, to tell a redefinition from a re-run.
    declaration: Declaration
    spec: EnvironmentSpec
    lock: Lock | None = None
    built: BuiltEnvironment | None = None
    kernel: SubKernel | None = None
    starting: asyncio.Task[SubKernel] | None = None
    progress: Progress | None = None
    # Whether any cell ran in its kernel (a restart then loses state).
    ran: bool = False
    # The sandbox policy its kernel was started under.
    policy: SandboxPolicy | None = None
    # Whether a define cell showed the start's summary; later ones must not repeat it.
    summarised: bool = False


@dataclass
class Route:
    """Where the reply to a forwarded request goes."""

    idents: list[bytes]
    channel: str
    kernel: SubKernel
    msg_type: str


@dataclass
class Execution:
    """An execute_request the proxy is running or relaying outputs for."""

    message: RawMessage
    header: dict[str, Any]
    content: dict[str, Any]
    count: int
    kernel: SubKernel | None = None
    reply: asyncio.Future[RawMessage] | None = None
    preparing: bool = True
    idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ProxyConfig:
    store: EnvironmentStore = field(default_factory=EnvironmentStore)
    data_store: DataStore = field(default_factory=DataStore)
    notebook_path: str | None = None
    prestart: bool = True
    # Run kernels under bubblewrap; False only by explicit opt-out (--no-sandbox).
    sandbox: bool = True
    # Keep the kernels' working directory here instead of a removed scratch dir.
    keep_workdir: Path | None = None
    # Where the runtime folder goes (nbseal run's own folder); else TMPDIR.
    runtime_parent: Path | None = None


class ProxyKernel:
    def __init__(self, connection: dict[str, Any], config: ProxyConfig | None = None) -> None:
        self.connection = connection
        self.config = config or ProxyConfig()
        self.session = WireSession(
            str(connection.get("key", "")).encode(),
            str(connection.get("signature_scheme", "hmac-sha256")),
            username="nbseal",
        )
        self.context = zmq.asyncio.Context()
        # Sockets, sub-kernels' connection files and the scratch workdir; what
        # killed proxies left behind is removed first.
        sweep_orphans()
        # Build folders of killed builds (run by root, the sandbox's uid owns them).
        sweep_orphans(uv_cache_dir(), also_owned_by=sandbox_identity().host_uid)
        self.runtime_dir = make_runtime_dir("nbseal-", self.config.runtime_parent)
        # Set when the process that started this kernel is gone.
        self.orphaned = False
        # jupyter_server starts kernels in the notebook's folder.
        self.notebook_dir = Path.cwd()
        self.workdir = (self.config.keep_workdir or self.runtime_dir / "work").resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.grants = Grants(self.workdir, self.notebook_dir, sealed=self.config.sandbox)
        self._unsealed_noted = False
        # Locks the notebook file holds (metadata.nbseal, then cell outputs).
        self.stored: dict[str, list[Lock]] = {}
        # Start the default kernel at once unless the notebook never uses it.
        self.prestart_default = True
        # Another environment to start at once: the first code cell's, when stored.
        self._prestart_first: EnvironmentSlot | None = None
        default = self._read_notebook()
        spec, lock = self._fitting(default)
        self.environments: dict[str, EnvironmentSlot] = {
            DEFAULT_ENV_NAME: EnvironmentSlot(default, spec or default.spec(), lock)
        }
        self.current_env = DEFAULT_ENV_NAME
        self.pin: str | None = None
        self.execution_count = 0
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._queue: asyncio.Queue[RawMessage] = asyncio.Queue()
        self._routes: dict[str, Route] = {}
        self._executions: dict[str, Execution] = {}
        self._running: Execution | None = None
        self._running_task: asyncio.Task[None] | None = None
        self._comms: dict[str, SubKernel] = {}
        self._fanouts: dict[str, ControlFanOut] = {}
        self._stdin_owner: SubKernel | None = None
        self._kernel_index = 0
        self._stopping = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._shell_handlers: dict[str, Handler] = {
            "execute_request": self._queue_execute,
            "kernel_info_request": self._kernel_info,
            "comm_open": self._comm_open,
            "comm_info_request": self._comm_info,
            "comm_msg": self._comm_route,
            "comm_close": self._comm_route,
            "shutdown_request": self._shutdown_request,
        }
        self._control_handlers: dict[str, Handler] = {
            "kernel_info_request": self._kernel_info,
            "interrupt_request": self._interrupt_request,
            "shutdown_request": self._shutdown_request,
        }

    # ==================================================================
    # the notebook file
    # ==================================================================
    def notebook_path(self) -> Path | None:
        """The notebook this kernel runs: ``nbseal run``'s path or ``JPY_SESSION_NAME``."""
        name = self.config.notebook_path or os.environ.get("JPY_SESSION_NAME", "")
        if not name:
            return None
        path = Path(name)
        # jupyter_server passes the path relative to its root; the kernel's
        # cwd is the notebook's folder.
        for candidate in (path, self.notebook_dir / path, self.notebook_dir / path.name):
            if candidate.is_file():
                return candidate
        return None

    def _read_notebook(self) -> Declaration:
        """Load the file's stored locks; return the default environment it declares."""
        path = self.notebook_path()
        if path is None:
            return default_declaration()
        try:
            notebook = read_notebook_json(path)
            self.stored = stored_locks(notebook)
            plan = plan_notebook(code_sources(notebook))
        except NbsealError as exc:
            # The cell that holds the problem reports it when it runs.
            log.warning("reading %s: %s", path, exc.message)
            return default_declaration()
        log.info("notebook %s holds locks for %s", path, ", ".join(self.stored) or "nothing")
        self.prestart_default = DEFAULT_ENV_NAME in plan.used
        self._prestart_first = self._stored_first_environment(plan)
        # Data already stored is in place before the first kernel starts, so
        # the pre-started kernel need not restart when its cell runs.
        for data in plan.data:
            stored = self.config.data_store.lookup(data.sha256)
            if stored is not None:
                self.grants.add_data(data.name, stored)
        return plan.environments.get(DEFAULT_ENV_NAME) or default_declaration()

    def _stored_first_environment(self, plan: NotebookPlan) -> EnvironmentSlot | None:
        """The first code cell's environment, if it is not the default one and can start now.

        Only with a lock stored in the notebook that still fits and an entry
        in the store: a kernel start then needs no resolution and no build, so
        it can overlap the frontend's own start-up (and is wasted at most).
        With network, shares or limits declared the kernel would restart at
        their cell, so it is not started early.
        """
        first = plan.first_used
        if first is None or first.name == DEFAULT_ENV_NAME:
            return None
        if plan.network or plan.shares or plan.limits != DEFAULT_LIMITS:
            return None
        spec, lock = self._fitting(first)
        if spec is None or lock is None or self.config.store.lookup(lock) is None:
            return None
        return EnvironmentSlot(first, spec, lock)

    def _fitting(self, declaration: Declaration) -> tuple[EnvironmentSpec | None, Lock | None]:
        """The spec and lock to use when the notebook holds a lock that still fits."""
        lock = declaration.fitting(self.stored.get(declaration.name, []))
        if lock is None:
            return None, None
        return declaration.spec(lock.exclude_newer), lock

    # ==================================================================
    # the sandbox
    # ==================================================================
    def _note_unsealed(self, execution: Execution) -> None:
        """An unsealed run says so in the notebook's outputs, once per session."""
        if self.config.sandbox or self._unsealed_noted:
            return
        self._unsealed_noted = True
        text = (
            "nbseal: this session runs WITHOUT the sandbox (--no-sandbox): kernels can "
            "reach the network and the user's files, so outputs may depend on them"
        )
        content = {
            "data": {"text/plain": text, UNSEALED_MIME: {"sealed": False}},
            "metadata": {},
            "transient": {},
        }
        self._send("iopub", "display_data", content, execution.header)

    # ==================================================================
    # start and stop
    # ==================================================================
    async def run(self) -> None:
        self._bind()
        readers = [
            self._reader("shell", self._dispatch_shell),
            self._reader("control", self._dispatch_control),
            self._reader("stdin", self._dispatch_stdin),
            self._executor(),
        ]
        self._tasks = [asyncio.create_task(coro) for coro in readers]
        if self.config.prestart and self.prestart_default:
            self._spawn(self._prestart(self.environments[DEFAULT_ENV_NAME]))
        first = self._prestart_first
        if self.config.prestart and first is not None:
            self.environments[first.declaration.name] = first
            self._spawn(self._prestart(first))
        self._spawn(self._watch_parent())
        await self._stopping.wait()
        await self._stop_kernels()
        for task in self._tasks:
            task.cancel()
        await asyncio.sleep(0.05)  # let the last replies leave
        for sock in self._sockets.values():
            sock.close(linger=500)
        await asyncio.sleep(0)  # let the loop drop the closed sockets' readers
        # destroy, not term: a socket left open anywhere must not hang the exit.
        self.context.destroy(linger=0)
        self.grants.clear_data_mounts()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)  # holds the scratch workdir

    def _bind(self) -> None:
        c = self.connection
        transport, ip = c.get("transport", "tcp"), c.get("ip", "127.0.0.1")

        def url(port: int) -> str:
            return f"tcp://{ip}:{port}" if transport == "tcp" else f"ipc://{ip}-{port}"

        kinds = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.PUB}
        for channel, kind in kinds.items():
            sock = self.context.socket(kind)
            sock.linger = 1000
            if kind == zmq.ROUTER:
                sock.router_handover = 1
            if channel == "stdin":
                # An input_request to a frontend whose stdin socket is not yet
                # connected would vanish and the cell would wait forever:
                # make it an error, which _send_input_request retries.
                sock.router_mandatory = 1
            sock.bind(url(int(c[f"{channel}_port"])))
            self._sockets[channel] = sock
        threading.Thread(target=_heartbeat, args=(url(int(c["hb_port"])),), daemon=True).start()

    def request_stop(self) -> None:
        """Stop serving (SIGTERM): every sub-kernel is shut down on the way out."""
        self._closing = True
        self._stopping.set()

    async def _watch_parent(self) -> None:
        """Stop when the process that started us is gone, as ipykernel does."""
        parent = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
        if parent <= 1:
            return
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        log.warning("parent process %d exited; shutting down", parent)
        self.orphaned = True
        self.request_stop()

    async def _prestart(self, slot: EnvironmentSlot) -> None:
        # No waiting for the first cell: build and start this kernel now. A
        # failure is reported by the cell that needs the environment.
        with contextlib.suppress(Exception):
            await self._kernel_for(slot)

    async def _stop_kernels(self) -> None:
        slots = list(self.environments.values())
        starting = [s.starting for s in slots if s.starting is not None and not s.starting.done()]
        for task in starting:
            task.cancel()
        # A start cancelled but not awaited would leave its sockets open (and
        # its sandbox running) while the context is torn down.
        if starting:
            await asyncio.wait(starting, timeout=10)
        kernels = [s.kernel for s in slots if s.kernel is not None]
        await asyncio.gather(*(k.shutdown() for k in kernels), return_exceptions=True)
        for slot in slots:
            slot.kernel = None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # ==================================================================
    # frontend side
    # ==================================================================
    async def _reader(self, channel: str, dispatch: Handler) -> None:
        sock = self._sockets[channel]
        while True:
            frames = await sock.recv_multipart()
            try:
                message = split_frames(frames)
                if not message.verify(self.session):
                    log.warning("dropped a %s message with a bad signature", channel)
                    continue
                dispatch(channel, message, dict(message.header(self.session)))
            except Exception:
                log.exception("dropped a malformed %s message", channel)

    def _dispatch_shell(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        handler = self._shell_handlers.get(header.get("msg_type", ""), self._forward_to_current)
        handler(channel, message, header)

    def _dispatch_control(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        handler = self._control_handlers.get(header.get("msg_type", ""), self._forward_to_current)
        handler(channel, message, header)

    def _dispatch_stdin(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        owner = self._stdin_owner
        if owner is None or not owner.alive:
            log.warning("dropped %s: no kernel is waiting for input", header.get("msg_type"))
            return
        owner.send("stdin", message.frames)

    # -- sending -----------------------------------------------------------
    def _send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None,
        idents: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata)
        if channel == "iopub":
            idents = [f"kernel.nbseal.{msg_type}".encode()]
        frames = self.session.serialize(msg, ident=idents)
        self._sockets[channel].send_multipart([*frames, *(buffers or [])])

    def _status(self, state: str, parent: dict[str, Any]) -> None:
        self._send("iopub", "status", {"execution_state": state}, parent)

    def _reply(
        self, channel: str, message: RawMessage, header: dict[str, Any], content: dict[str, Any]
    ) -> None:
        reply_type = header["msg_type"].replace("_request", "_reply")
        self._send(channel, reply_type, content, header, idents=message.idents)

    def _answer(
        self, channel: str, message: RawMessage, header: dict[str, Any], content: dict[str, Any]
    ) -> None:
        """Reply to a request the proxy handles itself, framed by busy and idle."""
        self._status("busy", header)
        self._reply(channel, message, header, content)
        self._status("idle", header)

    # -- requests the proxy answers ------------------------------------------
    def _kernel_info(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        self._answer(channel, message, header, self.kernel_info())

    def kernel_info(self) -> dict[str, Any]:
        slot = self.environments[self.current_env]
        info = slot.kernel.kernel_info if slot.kernel is not None else {}
        language_info = info.get("language_info") or _PYTHON_LANGUAGE_INFO
        implementation = info.get("implementation", "ipykernel")
        return {
            "status": "ok",
            "protocol_version": PROTOCOL_VERSION,
            "implementation": "nbseal",
            "implementation_version": __version__,
            "language_info": language_info,
            "banner": (
                f"nbseal {__version__}: reproducible environments. "
                f"Current environment {self.current_env!r} runs {implementation}. "
                "Type `#seal help` for the directives."
            ),
            "help_links": info.get("help_links", []),
            "debugger": bool(info.get("debugger", False)),
        }

    def _shutdown_request(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        content = message.content(self.session)
        restart = bool(content.get("restart", False))

        async def shut() -> None:
            self._closing = True
            self._status("busy", header)
            await self._stop_kernels()
            self._reply(channel, message, header, {"status": "ok", "restart": restart})
            self._send("iopub", "shutdown_reply", {"status": "ok", "restart": restart}, header)
            self._status("idle", header)
            self._stopping.set()

        self._spawn(shut())

    def _interrupt_request(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        async def interrupt() -> None:
            await self.interrupt()
            self._answer(channel, message, header, {"status": "ok"})

        self._spawn(interrupt())

    async def interrupt(self) -> None:
        running = self._running
        if running is not None and running.preparing and self._running_task is not None:
            # Still building or starting: stop that work; the cell reports it.
            slot = self.environments[self.current_env]
            if slot.starting is not None and not slot.starting.done():
                slot.starting.cancel()
            self._running_task.cancel()
            return
        kernel = running.kernel if running is not None else self._current_kernel()
        if kernel is not None:
            await kernel.interrupt()

    # -- routing to sub-kernels ----------------------------------------------
    def _current_kernel(self) -> SubKernel | None:
        kernel = self.environments[self.current_env].kernel
        return kernel if kernel is not None and kernel.alive else None

    def _forward_to_current(
        self, channel: str, message: RawMessage, header: dict[str, Any]
    ) -> None:
        kernel = self._current_kernel()
        if kernel is not None:
            self._forward(channel, kernel, message, header)
            return

        async def later() -> None:
            try:
                started = await self._kernel_for(self.environments[self.current_env])
            except Exception:
                self._fallback_reply(channel, message, header)
                return
            self._forward(channel, started, message, header)

        self._spawn(later())

    def _forward(
        self, channel: str, kernel: SubKernel, message: RawMessage, header: dict[str, Any]
    ) -> None:
        self._routes[header["msg_id"]] = Route(message.idents, channel, kernel, header["msg_type"])
        kernel.send(channel, message.frames)

    def _fallback_reply(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        msg_type = header.get("msg_type", "")
        if not msg_type.endswith("_request"):
            return
        content = dict(_FALLBACK_REPLIES.get(msg_type, {}))
        if msg_type not in _FALLBACK_REPLIES:
            content.update(
                status="error",
                ename="KernelStartError",
                evalue="no kernel is running in the current environment",
                traceback=[],
            )
        else:
            content["status"] = "ok"
        self._answer(channel, message, header, content)

    def _live_kernels(self) -> list[SubKernel]:
        return [
            slot.kernel
            for slot in self.environments.values()
            if slot.kernel is not None and slot.kernel.alive
        ]

    def _comm_open(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        content = message.content(self.session)
        comm_id = str(content.get("comm_id", ""))
        kernels = self._live_kernels()
        if content.get("target_name") == CONTROL_TARGET and kernels:
            self._fanouts[comm_id] = ControlFanOut(comm_id, kernels)
            for kernel in kernels:
                kernel.send("shell", message.frames)
            return
        current = self._current_kernel()
        if current is None:
            # What a kernel without the comm's target does: close it at once,
            # so the frontend does not wait for an answer that never comes.
            log.warning("closed comm %s: no kernel is running", comm_id)
            self._send("iopub", "comm_close", {"comm_id": comm_id, "data": {}}, header)
            return
        if comm_id:
            self._comms[comm_id] = current
        current.send("shell", message.frames)

    def _comm_route(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        # A comm lives in the kernel that opened it, even after a switch.
        content = message.content(self.session)
        comm_id = str(content.get("comm_id", ""))
        fanout = self._fanouts.get(comm_id)
        if fanout is not None:
            self._comm_fan_out(fanout, message, header)
            return
        kernel = self._comms.get(comm_id) or self._current_kernel()
        if kernel is None or not kernel.alive:
            log.warning("dropped %s for comm %s: its kernel is gone", header["msg_type"], comm_id)
            return
        if header["msg_type"] == "comm_close":
            self._comms.pop(comm_id, None)
        kernel.send("shell", message.frames)

    def _comm_fan_out(
        self, fanout: ControlFanOut, message: RawMessage, header: dict[str, Any]
    ) -> None:
        if header["msg_type"] == "comm_close":
            self._fanouts.pop(fanout.comm_id, None)
        elif message.content(self.session).get("data", {}).get("method") == "request_states":
            fanout.ask(header)
            # A kernel that never answers must not hide the others' widgets
            # (JupyterLab gives up after 4 s).
            loop = asyncio.get_running_loop()
            fanout.deadline = loop.call_later(2.5, self._publish_states, fanout)
        for kernel in fanout.kernels:
            if kernel.alive:
                kernel.send("shell", message.frames)

    def _fanout_from_kernel(
        self, fanout: ControlFanOut, kernel: SubKernel, msg_type: str, message: RawMessage
    ) -> None:
        if msg_type == "comm_close":
            fanout.drop(kernel)  # no ipywidgets in that kernel
            if not fanout.kernels:
                self._fanouts.pop(fanout.comm_id, None)
                self._sockets["iopub"].send_multipart(message.wire(), copy=False)
                return
        elif message.content(self.session).get("data", {}).get("method") == "update_states":
            fanout.answer(kernel, StateAnswer(message.content(self.session), message.frames[5:]))
        if fanout.complete():
            self._publish_states(fanout)

    def _publish_states(self, fanout: ControlFanOut) -> None:
        taken = fanout.take()
        if taken is not None:
            parent, merged = taken
            self._send("iopub", "comm_msg", merged.content, parent, buffers=merged.buffers)

    def _comm_info(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        """List the comms of every running kernel, not only the current one's."""
        content = message.content(self.session)
        kernels = self._live_kernels()

        async def ask(kernel: SubKernel) -> dict[str, Any]:
            reply = await asyncio.wait_for(kernel.request("shell", "comm_info_request", content), 5)
            comms = reply.content(self.session).get("comms", {})
            for comm_id in comms:
                self._comms.setdefault(str(comm_id), kernel)
            return {"comms": comms}

        async def gather() -> None:
            replies = await asyncio.gather(*(ask(k) for k in kernels), return_exceptions=True)
            merged = merge_comm_infos([r for r in replies if isinstance(r, dict)])
            self._answer(channel, message, header, merged)

        self._spawn(gather())

    # ==================================================================
    # sub-kernel side
    # ==================================================================
    def _from_kernel(self, kernel: SubKernel, channel: str, message: RawMessage) -> None:
        if channel == "iopub":
            self._relay_iopub(kernel, message)
        elif channel == "stdin":
            self._relay_input_request(kernel, message)
        else:
            self._relay_reply(kernel, channel, message)

    def _relay_reply(self, kernel: SubKernel, channel: str, message: RawMessage) -> None:
        parent_id = str(message.parent(self.session).get("msg_id", ""))
        execution = self._executions.get(parent_id)
        if channel == "shell" and execution is not None and execution.reply is not None:
            if not execution.reply.done():
                execution.reply.set_result(message)
            return
        route = self._routes.pop(parent_id, None)
        if route is None:
            log.debug("dropped a %s reply nobody waits for", channel)
            return
        message.idents = route.idents
        self._sockets[route.channel].send_multipart(message.wire(), copy=False)

    def _relay_input_request(self, kernel: SubKernel, message: RawMessage) -> None:
        parent_id = str(message.parent(self.session).get("msg_id", ""))
        execution = self._executions.get(parent_id)
        if execution is None:
            log.warning("dropped an input_request for an unknown request")
            return
        self._stdin_owner = kernel
        message.idents = execution.message.idents
        self._spawn(self._send_input_request(message.wire()))

    async def _send_input_request(self, frames: list[bytes], patience: float = 10.0) -> None:
        """Send to the frontend's stdin, waiting while its socket connects."""
        deadline = time.monotonic() + patience
        while True:
            try:
                await self._sockets["stdin"].send_multipart(frames, copy=False)
                return
            except zmq.ZMQError as e:
                if e.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                    log.warning("could not deliver an input_request to the frontend: %s", e)
                    return
            await asyncio.sleep(0.05)

    def _relay_iopub(self, kernel: SubKernel, message: RawMessage) -> None:
        header = message.header(self.session)
        msg_type = header.get("msg_type", "")
        if msg_type in _OUTPUT_TYPES:
            message = _without_nbseal_bundles(self.session, message)
        if msg_type in {"status", "execute_input", "execute_result"}:
            message = self._rewrite_iopub(msg_type, message)
            if not message.frames:
                return
        elif msg_type == "comm_open":
            comm_id = message.content(self.session).get("comm_id")
            if comm_id:
                self._comms[str(comm_id)] = kernel
        elif msg_type in {"comm_msg", "comm_close"}:
            comm_id = str(message.content(self.session).get("comm_id", ""))
            fanout = self._fanouts.get(comm_id)
            if fanout is not None:
                self._fanout_from_kernel(fanout, kernel, msg_type, message)
                return
            if msg_type == "comm_close":
                self._comms.pop(comm_id, None)
        self._sockets["iopub"].send_multipart(message.wire(), copy=False)

    def _rewrite_iopub(self, msg_type: str, message: RawMessage) -> RawMessage:
        """Own the execution count; drop the sub-kernel's duplicate ``busy``."""
        parent_id = str(message.parent(self.session).get("msg_id", ""))
        execution = self._executions.get(parent_id)
        if execution is None:
            if msg_type == "status" and (not parent_id or self._running is not None):
                # A sub-kernel's own "starting" is not the frontend's business
                # (the proxy started long ago), and while a cell runs the
                # frontend must not see another kernel's "idle".
                return RawMessage([], [])
            return message
        content = message.content(self.session)
        if msg_type == "status":
            state = content.get("execution_state")
            if state == "busy":
                return RawMessage([], [])  # the proxy announced busy already
            if state == "idle":
                execution.idle.set()
            return message
        if msg_type == "execute_input":
            return RawMessage([], [])  # the proxy published the cell's own code already
        content["execution_count"] = execution.count
        return message.with_part(self.session, 4, content)

    # ==================================================================
    # execution
    # ==================================================================
    def _queue_execute(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        self._queue.put_nowait(message)

    async def _executor(self) -> None:
        """Run execute requests one at a time, in the order they came."""
        while True:
            message = await self._queue.get()
            task = asyncio.ensure_future(self._execute(message))
            self._running_task = task
            try:
                await task
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    raise
            except Exception:
                log.exception("execute_request failed inside the proxy")
            finally:
                self._running_task = None
                self._running = None

    async def _execute(self, message: RawMessage) -> None:
        header: dict[str, Any] = dict(message.header(self.session))
        content = message.content(self.session)
        code = str(content.get("code", ""))
        silent = bool(content.get("silent", False))
        if not silent and content.get("store_history", True) and code.strip():
            self.execution_count += 1
        execution = Execution(message, header, content, self.execution_count)
        self._running = execution
        self._executions[header["msg_id"]] = execution
        self._status("busy", header)
        try:
            await self._run_cell(execution, code, silent)
        except asyncio.CancelledError:
            self._finish_with_error(execution, KernelStartError("interrupted before the cell ran"))
            if self._stopping.is_set():
                raise
        except NbsealError as exc:
            self._finish_with_error(execution, exc)
        except Exception as exc:
            log.exception("internal error while executing")
            internal = NbsealError(
                f"internal error in nbseal: {exc!r}",
                hint="please report it; NBSEAL_TRACEBACK=1 in the kernel's environment "
                "shows where it happened",
            )
            internal.__cause__ = exc
            self._finish_with_error(execution, internal)

    async def _run_cell(self, execution: Execution, code: str, silent: bool) -> None:
        cell = parse_cell(code)
        self._validate(cell.directives)
        if not silent:
            self._send(
                "iopub",
                "execute_input",
                {"code": code, "execution_count": execution.count},
                execution.header,
            )
        for directive in cell.directives:
            await self._apply(directive, execution)
        if cell.directives and not cell.has_code:
            self._finish_ok(execution)
            return
        slot = self.environments[self.current_env]
        kernel = await self._kernel_for(slot, show_in=execution)
        slot.ran = True
        execution.kernel = kernel
        execution.preparing = False
        await self._relay_execution(execution, kernel, cell.code)

    def _check_supported(self, directive: Directive) -> None:
        supported = (
            HelpDirective,
            DescribeDirective,
            PinDirective,
            EnvDefineDirective,
            EnvSwitchDirective,
            ScriptBlockDirective,
            AllowDirective,
            ShareDirective,
            LimitDirective,
            DataDirective,
        )
        if not isinstance(directive, supported):
            name = type(directive).__name__.removesuffix("Directive").lower()
            raise DirectiveError(
                f"this nbseal ({__version__}) cannot apply this directive yet ({name})",
                line=directive.line,
                text=f"#seal {name}",
                expected="`#seal env`, `#seal pin`, `#seal describe` or `#seal help`",
            )

    def _validate(self, directives: tuple[Directive, ...]) -> None:
        """Check a cell's directives against the notebook before any takes effect."""
        known = set(self.environments)
        for directive in directives:
            self._check_supported(directive)
            if isinstance(directive, EnvDefineDirective):
                known.add(directive.name)
                declare_env(directive, self.pin)  # raises for an unusable python=
            elif isinstance(directive, ScriptBlockDirective):
                declare_script(directive, self.pin)  # raises for requires-python
            elif isinstance(directive, ShareDirective):
                self.grants.share_path(directive)  # raises for a missing path
            elif isinstance(directive, LimitDirective):
                limits_after(self.grants.limits, directive)  # raises for a bad value
            elif isinstance(directive, EnvSwitchDirective) and directive.name not in known:
                raise DirectiveError(
                    f"no environment named {directive.name!r} is defined",
                    line=directive.line,
                    text=f"#seal env {directive.name}",
                    expected="`#seal env NAME <- REQUIREMENT...` before switching to NAME"
                    f" (defined: {', '.join(sorted(known))})",
                )

    async def _apply(self, directive: Directive, execution: Execution) -> None:
        if isinstance(directive, HelpDirective):
            self._print(execution, HELP_TEXT)
        elif isinstance(directive, DescribeDirective):
            await self._settle(execution)
            self._send("iopub", "display_data", self._describe(), execution.header)
        elif isinstance(directive, PinDirective):
            # A `;;guix pin` and a `#seal pin` date are kept side by side.
            self.pin = notebook_pin_after(self.pin, directive)
        elif isinstance(directive, EnvSwitchDirective):
            self.current_env = directive.name
        elif isinstance(directive, EnvDefineDirective):
            await self._define(declare_env(directive, self.pin), execution)
        elif isinstance(directive, ScriptBlockDirective):
            await self._define(declare_script(directive, self.pin), execution)
        elif isinstance(directive, AllowDirective):
            self.grants.network = True
        elif isinstance(directive, ShareDirective):
            self.grants.share(directive)
        elif isinstance(directive, LimitDirective):
            self.grants.limit(directive)
        elif isinstance(directive, DataDirective):
            await self._fetch_data(directive, execution)

    async def _fetch_data(self, directive: DataDirective, execution: Execution) -> None:
        """Fetch (or reuse) declared data and put it in every kernel's working directory."""
        url = directive.url
        if "://" not in url and not url.startswith("doi:"):
            url = str((self.notebook_dir / Path(url).expanduser()).resolve())
        progress = Progress(f"data {directive.name}")
        display = _ProgressDisplay(self, execution)
        progress.subscribe(display.on_event)
        policy = (
            SourcePolicy.for_notebook(
                self.notebook_dir, self.grants.shares, network=self.grants.network
            )
            if self.grants.sealed
            else UNRESTRICTED
        )
        try:
            stored = await self.config.data_store.ensure(url, directive.sha256, progress, policy)
        except NbsealError as exc:
            progress.fail(exc.message)
            raise
        how = "from the store" if stored.reused else "fetched, verified and stored"
        progress.finish(
            f"{stored.size / 1e6:.1f} MB, {how} in {progress.elapsed():.1f} s "
            f"(sha256 {stored.sha256[:12]})"
        )
        if not display.shown and progress.last is not None:
            display.show(progress.last)  # a data cell always ends with its summary
        self.grants.add_data(directive.name, stored.path)

    async def _define(self, declaration: Declaration, execution: Execution) -> None:
        """Make ``declaration`` current; build and start it, showing progress here."""
        name = declaration.name
        slot = self.environments.get(name)
        self.current_env = name
        if slot is None or slot.declaration != declaration:
            spec, lock = self._choose_lock(declaration, execution)
            if slot is not None and slot.kernel is not None:
                await slot.kernel.shutdown()
                if slot.ran:
                    self._print(
                        execution, f"nbseal: environment {name!r} changed; its kernel was restarted"
                    )
            slot = EnvironmentSlot(declaration, spec, lock)
            self.environments[name] = slot
        await self._kernel_for(slot, show_in=execution, summary=True)

    def _choose_lock(
        self, declaration: Declaration, execution: Execution
    ) -> tuple[EnvironmentSpec, Lock | None]:
        """Use the notebook's lock while it fits; say why when it does not."""
        spec, lock = self._fitting(declaration)
        if spec is not None:
            return spec, lock
        name = declaration.name
        candidates = self.stored.get(name, [])
        if candidates:
            self._print(
                execution,
                f"nbseal: the lock stored in this notebook for {name!r} is stale "
                f"({declaration.staleness(candidates[0])}); it is not used. "
                "Run `nbseal lock NOTEBOOK` to store a new one.",
            )
        if declaration.pin is not None:
            return declaration.spec(), None
        instant = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        backend = backend_for_requirements(declaration.requirements)
        self._print(execution, "nbseal: " + backend.unpinned_note(name, instant))
        return declaration.spec(instant), None

    def _print(self, execution: Execution, text: str) -> None:
        self._send("iopub", "stream", {"name": "stdout", "text": text + "\n"}, execution.header)

    async def _settle(self, execution: Execution) -> None:
        """Let kernels being started (the pre-start) finish, so a table does not race them.

        ``#seal describe`` then shows the same thing however fast the machine
        is; a build in progress shows its progress in the describe cell.
        """
        for slot in list(self.environments.values()):
            if slot.starting is not None and not slot.starting.done():
                with contextlib.suppress(Exception):  # the failure is the start's cell's news
                    await self._kernel_for(slot, show_in=execution)

    def _describe(self) -> dict[str, Any]:
        from nbseal.kernel.describe import describe_bundle

        bundle = describe_bundle(self.environments, self.current_env, self.grants.summary())
        return {"data": bundle, "metadata": {}, "transient": {}}

    async def _relay_execution(self, execution: Execution, kernel: SubKernel, code: str) -> None:
        message = execution.message
        if code != execution.content.get("code"):
            message = message.with_part(self.session, 4, {**execution.content, "code": code})
        waiter: asyncio.Future[RawMessage] = asyncio.get_running_loop().create_future()
        execution.reply = waiter
        kernel.send("shell", message.frames)
        waiting: set[asyncio.Future[Any]] = {waiter, kernel.exited}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            raise KernelDiedError(
                f"the kernel of environment {kernel.env_name!r} died while running this cell "
                f"({kernel.exit_description()})",
                hint="its variables are lost; the next cell starts a fresh kernel",
            )
        reply = waiter.result()
        reply_content = reply.content(self.session)
        reply_content["execution_count"] = execution.count
        # Abort what was queued when the cell failed, not what the frontend
        # sends after it has seen the error (as ipykernel does).
        failed = reply_content.get("status") == "error"
        doomed = (
            self._take_queued() if failed and execution.content.get("stop_on_error", True) else []
        )
        reply = reply.with_part(self.session, 4, reply_content)
        reply.idents = execution.message.idents
        self._sockets["shell"].send_multipart(reply.wire(), copy=False)
        # The next request starts after this one's idle, as in a single kernel.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(execution.idle.wait(), timeout=5.0)
        self._executions.pop(str(execution.header["msg_id"]), None)
        self._abort(doomed)

    def _finish_ok(self, execution: Execution) -> None:
        content = {
            "status": "ok",
            "execution_count": execution.count,
            "user_expressions": {},
            "payload": [],
        }
        self._reply("shell", execution.message, execution.header, content)
        self._end(execution)

    def _finish_with_error(self, execution: Execution, exc: NbsealError) -> None:
        self._send("iopub", "error", error_content(exc), execution.header)
        content = {"status": "error", **error_content(exc, execution.count)}
        self._reply("shell", execution.message, execution.header, content)
        self._end(execution)
        if execution.content.get("stop_on_error", True):
            self._abort_queued()

    def _end(self, execution: Execution) -> None:
        self._status("idle", execution.header)
        self._executions.pop(str(execution.header["msg_id"]), None)

    def _take_queued(self) -> list[RawMessage]:
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    def _abort_queued(self) -> None:
        """After an error, queued cells are aborted, as ipykernel does."""
        self._abort(self._take_queued())

    def _abort(self, messages: list[RawMessage]) -> None:
        for message in messages:
            header: dict[str, Any] = dict(message.header(self.session))
            self._status("busy", header)
            self._reply("shell", message, header, {"status": "aborted"})
            self._status("idle", header)

    # ==================================================================
    # environments and their kernels
    # ==================================================================
    async def _kernel_for(
        self, slot: EnvironmentSlot, show_in: Execution | None = None, summary: bool = False
    ) -> SubKernel:
        """The running kernel of ``slot``, built and started if need be.

        With ``show_in``, a build's progress is shown in that cell; with
        ``summary`` the cell always ends with the one-line summary and the
        lock (saved with the notebook, where the kernel and ``nbseal lock``
        find it again).
        """
        display = _ProgressDisplay(self, show_in) if show_in is not None else None
        if show_in is not None:
            self._note_unsealed(show_in)
        await self._apply_policy(slot, show_in)
        running = slot.kernel is not None and slot.kernel.alive
        if not running:
            if slot.starting is None or slot.starting.done():
                slot.progress = Progress(slot.spec.name)
                slot.starting = asyncio.ensure_future(self._start_kernel(slot, slot.progress))
            if display is not None and slot.progress is not None:
                slot.progress.subscribe(display.on_event)
            try:
                await asyncio.shield(slot.starting)
            finally:
                if display is not None and slot.progress is not None:
                    slot.progress.unsubscribe(display.on_event)
        kernel = slot.kernel
        if kernel is None:
            raise KernelStartError(f"the kernel of environment {slot.spec.name!r} did not start")
        if self.config.sandbox and slot.policy != self.grants.policy():
            # Started (by the pre-start) before this cell's grants or data existed.
            return await self._kernel_for(slot, show_in, summary)
        if display is not None and summary and slot.lock:
            if running and slot.summarised:
                last = _running_summary(slot)
            else:
                last = slot.progress.last if slot.progress is not None else None
            if last is not None and last.done:
                display.show(last, lock_output(slot.spec.name, slot.lock))
                slot.summarised = True
        return kernel

    async def _apply_policy(self, slot: EnvironmentSlot, show_in: Execution | None) -> None:
        """A kernel started under other grants is restarted before it runs more code."""
        kernel = slot.kernel
        if kernel is None or not kernel.alive or not self.config.sandbox:
            return
        if slot.policy == self.grants.policy():
            return
        await kernel.shutdown()
        slot.kernel = None
        if slot.ran and show_in is not None:
            self._print(
                show_in,
                f"nbseal: the sandbox of {slot.spec.name!r} changed "
                f"({self.grants.summary()}); its kernel was restarted",
            )
        slot.ran = False

    async def _start_kernel(self, slot: EnvironmentSlot, progress: Progress) -> SubKernel:
        try:
            if slot.lock is None:
                slot.lock = await resolve(slot.spec, self.config.store, progress)
            if slot.built is None:
                slot.built = await realize(slot.spec, self.config.store, progress, lock=slot.lock)
            backend = backend_for(slot.lock.backend)
            launcher = backend.launcher(self.grants.policy(), sealed=self.grants.sealed)
            command = backend.kernel_command(slot.built.path, slot.spec.kernel)
            slot.policy = self.grants.policy()
            self._kernel_index += 1
            kernel = SubKernel(
                env_name=slot.spec.name,
                command=command,
                env_path=slot.built.path,
                session=self.session,
                context=self.context,
                runtime_dir=self.runtime_dir,
                workdir=self.workdir,
                launcher=launcher,
                handler=self._from_kernel,
                index=self._kernel_index,
                # With the network, a kernel could reach the frontend's ports:
                # it must not hold the key that signs the frontend's requests.
                private_key=self.grants.network,
            )
            await kernel.start()
        except NbsealError as exc:
            progress.fail(exc.message)
            raise
        slot.kernel = kernel
        self._spawn(self._watch(slot, kernel))
        return kernel

    async def _watch(self, slot: EnvironmentSlot, kernel: SubKernel) -> None:
        await asyncio.shield(kernel.exited)
        if slot.kernel is kernel:
            slot.kernel = None
        for comm_id in [c for c, k in self._comms.items() if k is kernel]:
            del self._comms[comm_id]
        for fanout in self._fanouts.values():
            fanout.drop(kernel)
            if fanout.complete():
                self._publish_states(fanout)
        if self._stdin_owner is kernel:
            self._stdin_owner = None
        for msg_id, route in list(self._routes.items()):
            if route.kernel is kernel:
                del self._routes[msg_id]
        await kernel.close()
        if not (self._closing or self._stopping.is_set() or kernel.stopping):
            log.warning("kernel of %s ended (%s)", kernel.env_name, kernel.exit_description())


def _running_summary(slot: EnvironmentSlot) -> ProgressEvent | None:
    """The summary of a define cell whose kernel was already running: nothing was built."""
    if slot.lock is None or slot.built is None:
        return None
    count = len(slot.lock.packages())
    step = f"{count} packages, kernel already running (key {slot.built.key[:12]})"
    return ProgressEvent(slot.spec.name, step, 0.0, done=True)


class _ProgressDisplay:
    """One display in a cell that a build's progress updates in place."""

    def __init__(self, proxy: ProxyKernel, execution: Execution) -> None:
        self.proxy = proxy
        self.execution = execution
        self.display_id = f"nbseal-progress-{uuid.uuid4().hex}"
        self.shown = False

    def on_event(self, event: ProgressEvent) -> None:
        if not self.shown and event.done and not event.failed:
            return  # nothing was built: a reused environment needs no display
        self.show(event)

    def show(self, event: ProgressEvent, extra: dict[str, Any] | None = None) -> None:
        msg_type = "update_display_data" if self.shown else "display_data"
        self.shown = True
        content = {
            "data": {**progress_bundle(event), **(extra or {})},
            "metadata": {},
            "transient": {"display_id": self.display_id},
        }
        self.proxy._send("iopub", msg_type, content, self.execution.header)


def _heartbeat(url: str) -> None:
    """Echo heartbeat pings, in a thread of its own, like ipykernel."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    sock.bind(url)
    with contextlib.suppress(zmq.ZMQError):
        zmq.proxy(sock, sock)


def configure_logging() -> None:
    level = os.environ.get("NBSEAL_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="[nbseal %(levelname)s] %(message)s")


def _without_nbseal_bundles(session: WireSession, message: RawMessage) -> RawMessage:
    """``message`` without any ``application/vnd.nbseal.*`` bundle a sub-kernel put in it."""
    if len(message.frames) < 5 or not _MAY_FORGE.search(message.frames[4]):
        return message  # the common case: nothing decoded
    content = message.content(session)
    data = content.get("data")
    if not isinstance(data, dict):
        return message
    forged = [key for key in data if str(key).lower().startswith(_NBSEAL_MIME_PREFIX)]
    if not forged:
        return message
    log.warning("dropped %s from a sub-kernel's output: only nbseal writes them", forged)
    kept = {key: value for key, value in data.items() if key not in forged}
    metadata = content.get("metadata")
    if isinstance(metadata, dict):
        metadata = {key: value for key, value in metadata.items() if key not in forged}
    return message.with_part(session, 4, {**content, "data": kept, "metadata": metadata or {}})
