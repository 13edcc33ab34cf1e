"""The execution queue: execute requests run one at a time, in the order they came.

Each request is an :class:`Execution` that holds all of its state, from
``busy`` to ``idle``: the request, its execution count, the kernel that runs
it, the future its reply arrives on and the event of the kernel's ``idle``.
What a cell means (its directives, its environment) is the cell runner's
business: it returns the kernel and the code to relay, or None when the cell
held only directives. A failure becomes the cell's ``error`` and its reply,
and the requests queued behind it are aborted, as ipykernel does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nbseal.errors import KernelDiedError, KernelStartError, NbsealError, internal_error
from nbseal.kernel.app import ProxyIO
from nbseal.kernel.display import error_content
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.wire import RawMessage

__all__ = ["CellRunner", "Execution", "ExecutionQueue", "ExpressCheck"]

log = logging.getLogger("nbseal.kernel")


@dataclass
class Execution:
    """An execute_request the proxy is running or relaying outputs for."""

    message: RawMessage
    header: dict[str, Any]
    content: dict[str, Any]
    count: int
    kernel: SubKernel | None = None
    # Set while the request is in a sub-kernel: its execute_reply.
    reply: asyncio.Future[RawMessage] | None = None
    # True while nbseal builds or starts what the cell needs (an interrupt
    # then stops that work instead of reaching a kernel).
    preparing: bool = True
    # Set at the sub-kernel's idle for this request.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests queued behind it when its reply said error: aborted after its idle.
    doomed: list[RawMessage] = field(default_factory=list)

    @property
    def msg_id(self) -> str:
        return str(self.header["msg_id"])

    @property
    def code(self) -> str:
        return str(self.content.get("code", ""))

    @property
    def silent(self) -> bool:
        return bool(self.content.get("silent", False))

    @property
    def stop_on_error(self) -> bool:
        return bool(self.content.get("stop_on_error", True))

    def input_content(self) -> dict[str, Any]:
        """The ``execute_input`` the proxy publishes for it (the kernel's own is dropped)."""
        return {"code": self.code, "execution_count": self.count}


# Prepares a cell: the kernel and the code to relay, or None if nothing is left to run.
CellRunner = Callable[[Execution], Awaitable["tuple[SubKernel, str] | None"]]
# A cell that needs no preparation (no directive, its kernel running): that kernel, else None.
ExpressCheck = Callable[[Execution], "SubKernel | None"]


class ExecutionQueue:
    def __init__(self, io: ProxyIO) -> None:
        self.io = io
        self.execution_count = 0
        self.running: Execution | None = None
        self._queue: asyncio.Queue[RawMessage] = asyncio.Queue()
        self._executions: dict[str, Execution] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def put(self, message: RawMessage) -> None:
        self._queue.put_nowait(message)

    def lookup(self, msg_id: str) -> Execution | None:
        """The execution a sub-kernel's message answers, if it is still in flight."""
        return self._executions.get(msg_id)

    async def serve(self, prepare: CellRunner, express: ExpressCheck | None = None) -> None:
        """Run requests until cancelled; ``prepare`` gives each its kernel and code.

        A cell ``express`` hands a running kernel (no directive, nothing to
        build or restart) goes to that kernel before anything else is sent,
        in this same step: the frontend's ``busy`` and ``execute_input`` follow
        it, still ahead of any output, which can only arrive at a later step.
        """
        while True:
            message = await self._queue.get()
            execution = self._begin(message)
            kernel = self._express(express, execution)
            if kernel is not None:
                execution.kernel, execution.preparing = kernel, False
                self._send(execution, kernel, message)
                self.io.sockets.status("busy", execution.header)
                if not execution.silent:
                    self.io.sockets.send(
                        "iopub", "execute_input", execution.input_content(), execution.header
                    )
                work = self._guarded(execution, self._await_reply(execution, kernel))
            else:
                work = self._execute(execution, prepare)
            task = asyncio.ensure_future(work)
            self._task = task
            try:
                await task
            except asyncio.CancelledError:
                if self._stopping:
                    raise
            except Exception:
                log.exception("execute_request failed inside the proxy")
            finally:
                self._task = None
                self.running = None

    @staticmethod
    def _express(express: ExpressCheck | None, execution: Execution) -> SubKernel | None:
        try:
            return express(execution) if express is not None else None
        except Exception:
            log.exception("the express check failed; the cell takes the common path")
            return None

    def stop(self) -> None:
        """From now on a cancelled request is the proxy stopping, not an interrupt."""
        self._stopping = True

    def cancel_preparing(self) -> bool:
        """Stop the running request if it is still being prepared; False if it is not."""
        running = self.running
        if running is None or not running.preparing or self._task is None:
            return False
        self._task.cancel()
        return True

    def _begin(self, message: RawMessage) -> Execution:
        """The request becomes the running execution, counted as ipykernel counts."""
        header: dict[str, Any] = dict(message.header(self.io.session))
        content = message.content(self.io.session)
        code = str(content.get("code", ""))
        if not content.get("silent", False) and content.get("store_history", True) and code.strip():
            self.execution_count += 1
        execution = Execution(message, header, content, self.execution_count)
        self.running = execution
        self._executions[execution.msg_id] = execution
        return execution

    async def _execute(self, execution: Execution, prepare: CellRunner) -> None:
        self.io.sockets.status("busy", execution.header)
        await self._guarded(execution, self._prepare_and_relay(execution, prepare))

    async def _prepare_and_relay(self, execution: Execution, prepare: CellRunner) -> None:
        prepared = await prepare(execution)
        if prepared is None:
            self._finish_ok(execution)
            return
        kernel, code = prepared
        execution.kernel = kernel
        execution.preparing = False
        await self._relay(execution, kernel, code)

    async def _guarded(self, execution: Execution, work: Awaitable[None]) -> None:
        """Run ``work``; whatever it raises becomes the cell's error and reply."""
        try:
            await work
        except asyncio.CancelledError:
            self._finish_with_error(execution, KernelStartError.interrupted())
            if self._stopping:
                raise
        except NbsealError as exc:
            self._finish_with_error(execution, exc)
        except Exception as exc:
            log.exception("internal error while executing")
            internal = internal_error(exc)
            internal.__cause__ = exc
            self._finish_with_error(execution, internal)

    async def _relay(self, execution: Execution, kernel: SubKernel, code: str) -> None:
        message = execution.message
        if code != execution.code:
            message = message.with_part(self.io.session, 4, {**execution.content, "code": code})
        self._send(execution, kernel, message)
        await self._await_reply(execution, kernel)

    @staticmethod
    def _send(execution: Execution, kernel: SubKernel, message: RawMessage) -> None:
        """The request to its kernel, with the future its reply will arrive on."""
        execution.reply = asyncio.get_running_loop().create_future()
        kernel.send("shell", message.frames)

    async def _await_reply(self, execution: Execution, kernel: SubKernel) -> None:
        """Wait for the request's reply (relayed on arrival, see ``reply``), then its idle."""
        waiter = execution.reply
        assert waiter is not None, "sent with _send"
        waiting: set[asyncio.Future[Any]] = {waiter, kernel.exited}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            raise KernelDiedError.in_cell(kernel.env_name, kernel.exit_description())
        # The next request starts after this one's idle, as in a single kernel.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(execution.idle.wait(), timeout=5.0)
        self._executions.pop(execution.msg_id, None)
        self._abort(execution.doomed)

    def reply(self, execution: Execution, reply: RawMessage) -> None:
        """The sub-kernel's execute_reply: to the frontend at once, with the proxy's count."""
        reply_content = reply.content(self.io.session)
        reply_content["execution_count"] = execution.count
        # Abort what was queued when the cell failed, not what the frontend
        # sends after it has seen the error (as ipykernel does).
        if reply_content.get("status") == "error" and execution.stop_on_error:
            execution.doomed = self._take_queued()
        reply = reply.with_part(self.io.session, 4, reply_content)
        reply.idents = execution.message.idents
        self.io.sockets.relay("shell", reply)
        if execution.reply is not None and not execution.reply.done():
            execution.reply.set_result(reply)

    def _finish_ok(self, execution: Execution) -> None:
        content = {
            "status": "ok",
            "execution_count": execution.count,
            "user_expressions": {},
            "payload": [],
        }
        self.io.sockets.reply("shell", execution.message, execution.header, content)
        self._end(execution)

    def _finish_with_error(self, execution: Execution, exc: NbsealError) -> None:
        self.io.sockets.send("iopub", "error", error_content(exc), execution.header)
        content = {"status": "error", **error_content(exc, execution.count)}
        self.io.sockets.reply("shell", execution.message, execution.header, content)
        self._end(execution)
        if execution.stop_on_error:
            self._abort(self._take_queued())

    def _end(self, execution: Execution) -> None:
        self.io.sockets.status("idle", execution.header)
        self._executions.pop(execution.msg_id, None)

    def _take_queued(self) -> list[RawMessage]:
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

    def _abort(self, messages: list[RawMessage]) -> None:
        """After an error, queued cells are aborted, as ipykernel does."""
        for message in messages:
            header: dict[str, Any] = dict(message.header(self.io.session))
            self.io.sockets.answer("shell", message, header, {"status": "aborted"})
