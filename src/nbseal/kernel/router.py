"""The router: which sub-kernel a frontend message goes to, and how its answers come back.

Requests go to the current environment's kernel, and their replies back to
the frontend that asked (a route per request); a comm lives in the kernel
that opened it, even after a switch; the widget manager's control comm is
fanned out to every kernel and its answers merged; an ``input_request`` makes
its kernel the owner of the frontend's stdin. Iopub traffic is relayed as
frames, rewritten only where the proxy owns a field (the execution count,
the ``busy``/``idle`` of the request it runs) and stripped of nbseal's own
MIME types, which only the proxy may write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nbseal.kernel.app import ProxyIO
from nbseal.kernel.comms import CONTROL_TARGET, ControlFanOut, StateAnswer, merge_comm_infos
from nbseal.kernel.execution import ExecutionQueue
from nbseal.kernel.pool import EnvironmentPool
from nbseal.kernel.sealing import OUTPUT_TYPES, OutputSeal
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.wire import RawMessage

__all__ = ["Router"]

log = logging.getLogger("nbseal.kernel")

# How long the widget manager's request_states waits for a silent kernel
# (JupyterLab gives up after 4 s).
_STATES_PATIENCE = 2.5

# Empty answers for requests that arrive when no sub-kernel can answer them.
_FALLBACK_REPLIES: dict[str, dict[str, Any]] = {
    "complete_request": {"matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}},
    "inspect_request": {"found": False, "data": {}, "metadata": {}},
    "is_complete_request": {"status": "unknown"},
    "history_request": {"history": []},
    "comm_info_request": {"comms": {}},
}


@dataclass
class Route:
    """Where the reply to a forwarded request goes."""

    idents: list[bytes]
    channel: str
    kernel: SubKernel
    msg_type: str


@dataclass
class Router:
    io: ProxyIO
    pool: EnvironmentPool
    queue: ExecutionQueue
    # The output policy (what a sealed kernel may show in the page).
    seal: OutputSeal
    # A line to add after a cell's error output (see kernel/hints.py), or None.
    explain: Callable[[dict[str, Any]], str | None] = lambda error: None
    # msg_id -> where its reply goes; comm_id -> the kernel the comm lives in.
    _routes: dict[str, Route] = field(default_factory=dict, init=False)
    _comms: dict[str, SubKernel] = field(default_factory=dict, init=False)
    _fanouts: dict[str, ControlFanOut] = field(default_factory=dict, init=False)
    # The kernel whose input_request the frontend answers next.
    _stdin_owner: SubKernel | None = field(default=None, init=False)

    # ==================================================================
    # frontend -> sub-kernels
    # ==================================================================
    def forward_to_current(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        """Send a request to the current environment's kernel, started if need be."""
        kernel = self.pool.current_kernel()
        if kernel is not None:
            self._forward(channel, kernel, message, header)
            return

        async def later() -> None:
            try:
                started = await self.pool.kernel_for(self.pool.current_slot)
            except Exception:
                self._fallback_reply(channel, message, header)
                return
            self._forward(channel, started, message, header)

        self.io.background.spawn(later())

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
        self.io.sockets.answer(channel, message, header, content)

    def stdin(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        """An input_reply goes to the kernel that asked for input."""
        owner = self._stdin_owner
        if owner is None or not owner.alive:
            log.warning("dropped %s: no kernel is waiting for input", header.get("msg_type"))
            return
        owner.send("stdin", message.frames)

    # -- comms -------------------------------------------------------------
    def comm_open(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        content = message.content(self.io.session)
        comm_id = str(content.get("comm_id", ""))
        kernels = self.pool.live_kernels()
        if content.get("target_name") == CONTROL_TARGET and kernels:
            self._fanouts[comm_id] = ControlFanOut(comm_id, kernels)
            for kernel in kernels:
                kernel.send("shell", message.frames)
            return
        current = self.pool.current_kernel()
        if current is None:
            # What a kernel without the comm's target does: close it at once,
            # so the frontend does not wait for an answer that never comes.
            log.warning("closed comm %s: no kernel is running", comm_id)
            self.io.sockets.send("iopub", "comm_close", {"comm_id": comm_id, "data": {}}, header)
            return
        if comm_id:
            self._comms[comm_id] = current
        current.send("shell", message.frames)

    def comm_route(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        # A comm lives in the kernel that opened it, even after a switch.
        content = message.content(self.io.session)
        comm_id = str(content.get("comm_id", ""))
        fanout = self._fanouts.get(comm_id)
        if fanout is not None:
            self._comm_fan_out(fanout, message, header)
            return
        kernel = self._comms.get(comm_id) or self.pool.current_kernel()
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
        elif message.content(self.io.session).get("data", {}).get("method") == "request_states":
            fanout.ask(header)
            # A kernel that never answers must not hide the others' widgets.
            loop = asyncio.get_running_loop()
            fanout.deadline = loop.call_later(_STATES_PATIENCE, self._publish_states, fanout)
        for kernel in fanout.kernels:
            if kernel.alive:
                kernel.send("shell", message.frames)

    def comm_info(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        """List the comms of every running kernel, not only the current one's."""
        content = message.content(self.io.session)
        kernels = self.pool.live_kernels()

        async def ask(kernel: SubKernel) -> dict[str, Any]:
            reply = await asyncio.wait_for(kernel.request("shell", "comm_info_request", content), 5)
            comms = reply.content(self.io.session).get("comms", {})
            for comm_id in comms:
                self._comms.setdefault(str(comm_id), kernel)
            return {"comms": comms}

        async def gather() -> None:
            replies = await asyncio.gather(*(ask(k) for k in kernels), return_exceptions=True)
            merged = merge_comm_infos([r for r in replies if isinstance(r, dict)])
            self.io.sockets.answer(channel, message, header, merged)

        self.io.background.spawn(gather())

    # ==================================================================
    # sub-kernels -> frontend
    # ==================================================================
    def from_kernel(self, kernel: SubKernel, channel: str, message: RawMessage) -> None:
        if channel == "iopub":
            self._relay_iopub(kernel, message)
        elif channel == "stdin":
            self._relay_input_request(kernel, message)
        else:
            self._relay_reply(channel, message)

    def forget(self, kernel: SubKernel) -> None:
        """A kernel is gone: its comms, routes and stdin go with it."""
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

    def _relay_reply(self, channel: str, message: RawMessage) -> None:
        parent_id = str(message.parent(self.io.session).get("msg_id", ""))
        execution = self.queue.lookup(parent_id)
        if channel == "shell" and execution is not None and execution.reply is not None:
            if not execution.reply.done():
                self.queue.reply(execution, self.seal.reply("execute_reply", message))
            return
        route = self._routes.pop(parent_id, None)
        if route is None:
            log.debug("dropped a %s reply nobody waits for", channel)
            return
        message = self.seal.reply(route.msg_type.replace("_request", "_reply"), message)
        message.idents = route.idents
        self.io.sockets.relay(route.channel, message)

    def _relay_input_request(self, kernel: SubKernel, message: RawMessage) -> None:
        parent_id = str(message.parent(self.io.session).get("msg_id", ""))
        execution = self.queue.lookup(parent_id)
        if execution is None:
            log.warning("dropped an input_request for an unknown request")
            return
        self._stdin_owner = kernel
        message.idents = execution.message.idents
        self.io.background.spawn(self.io.sockets.send_input_request(message.wire()))

    def _relay_iopub(self, kernel: SubKernel, message: RawMessage) -> None:
        msg_type = message.header(self.io.session).get("msg_type", "")
        if msg_type == "iopub_welcome":
            return  # it welcomes the proxy's subscription; the proxy welcomes the frontend's
        if msg_type in OUTPUT_TYPES:
            message = self.seal.output(message)
        elif msg_type in {"comm_open", "comm_msg", "comm_close"}:
            sealed = self.seal.comm(msg_type, message)
            if sealed is None:
                return
            message = sealed
        if msg_type in {"status", "execute_input", "execute_result"}:
            rewritten = self._rewrite_iopub(msg_type, message)
            if rewritten is None:
                return
            message = rewritten
        elif msg_type == "comm_open":
            comm_id = message.content(self.io.session).get("comm_id")
            if comm_id:
                self._comms[str(comm_id)] = kernel
        elif msg_type in {"comm_msg", "comm_close"}:
            comm_id = str(message.content(self.io.session).get("comm_id", ""))
            fanout = self._fanouts.get(comm_id)
            if fanout is not None:
                self._fanout_from_kernel(fanout, kernel, msg_type, message)
                return
            if msg_type == "comm_close":
                self._comms.pop(comm_id, None)
        self.io.sockets.relay("iopub", message)
        if msg_type == "error":
            self._explain(message)

    def _explain(self, message: RawMessage) -> None:
        note = self.explain(message.content(self.io.session))
        if note is not None:
            content = {"name": "stderr", "text": note}
            parent = dict(message.parent(self.io.session))
            self.io.sockets.send("iopub", "stream", content, parent)

    def _rewrite_iopub(self, msg_type: str, message: RawMessage) -> RawMessage | None:
        """Own the execution count; drop the sub-kernel's duplicate ``busy`` (None: drop)."""
        parent_id = str(message.parent(self.io.session).get("msg_id", ""))
        execution = self.queue.lookup(parent_id)
        if execution is None:
            if msg_type == "status" and (not parent_id or self.queue.running is not None):
                # A sub-kernel's own "starting" is not the frontend's business
                # (the proxy started long ago), and while a cell runs the
                # frontend must not see another kernel's "idle".
                return None
            return message
        content = message.content(self.io.session)
        if msg_type == "status":
            state = content.get("execution_state")
            if state == "busy":
                return None  # the proxy announced busy already
            if state == "idle":
                execution.idle.set()
            return message
        if msg_type == "execute_input":
            return None  # the proxy published the cell's own code already
        content["execution_count"] = execution.count
        return message.with_part(self.io.session, 4, content)

    def _fanout_from_kernel(
        self, fanout: ControlFanOut, kernel: SubKernel, msg_type: str, message: RawMessage
    ) -> None:
        if msg_type == "comm_close":
            fanout.drop(kernel)  # no ipywidgets in that kernel
            if not fanout.kernels:
                self._fanouts.pop(fanout.comm_id, None)
                self.io.sockets.relay("iopub", message)
                return
        elif message.content(self.io.session).get("data", {}).get("method") == "update_states":
            answer = StateAnswer(message.content(self.io.session), message.frames[5:])
            fanout.answer(kernel, self.seal.states(answer))
        if fanout.complete():
            self._publish_states(fanout)

    def _publish_states(self, fanout: ControlFanOut) -> None:
        taken = fanout.take()
        if taken is not None:
            parent, merged = taken
            self.io.sockets.send(
                "iopub", "comm_msg", merged.content, parent, buffers=merged.buffers
            )
