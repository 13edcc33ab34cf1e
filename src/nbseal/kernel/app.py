"""The proxy's process: its sockets to the frontend, the heartbeat, its parent, its tasks.

:class:`FrontendSockets` binds the five channels of a connection file and
sends on them; everything the proxy says to the frontend leaves through it.
:class:`Background` keeps the proxy's background tasks so none is lost or
left running; :func:`watch_parent` stops the proxy when its parent is gone,
as ipykernel does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from nbseal.kernel.session import WireSession
from nbseal.kernel.wire import RawMessage

__all__ = ["Background", "FrontendSockets", "ProxyIO", "configure_logging", "watch_parent"]

log = logging.getLogger("nbseal.kernel")

# iopub is an XPUB, as ipykernel's: it hears each new subscriber and welcomes it.
_KINDS = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.XPUB}


def configure_logging() -> None:
    level = os.environ.get("NBSEAL_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="[nbseal %(levelname)s] %(message)s")


class FrontendSockets:
    """The frontend's side of the wire: bound sockets, and every way to send on them."""

    def __init__(self, session: WireSession, context: zmq.asyncio.Context) -> None:
        self.session = session
        self.context = context
        self.sockets: dict[str, zmq.asyncio.Socket] = {}

    def bind(self, connection: dict[str, Any]) -> None:
        """Bind shell, control, stdin and iopub, and answer heartbeats in a thread."""
        transport = connection.get("transport", "tcp")
        ip = connection.get("ip", "127.0.0.1")

        def url(port: int) -> str:
            return f"tcp://{ip}:{port}" if transport == "tcp" else f"ipc://{ip}-{port}"

        for channel, kind in _KINDS.items():
            sock = self.context.socket(kind)
            sock.linger = 1000
            if kind == zmq.ROUTER:
                sock.router_handover = 1
            if kind == zmq.XPUB:
                sock.xpub_verbose = 1  # every subscriber, not only a topic's first
            if channel == "stdin":
                # An input_request to a frontend whose stdin socket is not yet
                # connected would vanish and the cell would wait forever:
                # make it an error, which send_input_request retries.
                sock.router_mandatory = 1
            sock.bind(url(int(connection[f"{channel}_port"])))
            self.sockets[channel] = sock
        hb_url = url(int(connection["hb_port"]))
        threading.Thread(target=_heartbeat, args=(hb_url,), daemon=True).start()

    async def receive(self, channel: str) -> list[bytes]:
        return list(await self.sockets[channel].recv_multipart())

    async def welcome_subscribers(self) -> None:
        """Answer each new iopub subscription with ``iopub_welcome`` (JEP 65), until cancelled.

        A client that subscribed cannot otherwise know when its subscription
        took effect: jupyter_client's ``wait_for_ready`` waits 0.2 s for an
        iopub message after each kernel_info reply and asks again when none
        came, which cost every ``nbseal run`` about 200 ms.
        """
        while True:
            for frame in await self.sockets["iopub"].recv_multipart():
                if frame[:1] != b"\x01":
                    continue  # an unsubscription
                topic = bytes(frame[1:])
                msg = self.session.msg(
                    "iopub_welcome", {"subscription": topic.decode("utf-8", "replace")}
                )
                frames = self.session.serialize(msg, ident=[topic] if topic else None)
                self.sockets["iopub"].send_multipart(frames)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=500)

    # -- sending -----------------------------------------------------------
    def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None,
        idents: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        """A new message of the proxy's own, signed with the frontend's key."""
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata)
        if channel == "iopub":
            idents = [f"kernel.nbseal.{msg_type}".encode()]
        frames = self.session.serialize(msg, ident=idents)
        self.sockets[channel].send_multipart([*frames, *(buffers or [])])

    def relay(self, channel: str, message: RawMessage) -> None:
        """A sub-kernel's message, as it is, to whoever ``message.idents`` names."""
        self.sockets[channel].send_multipart(message.wire(), copy=False)

    def status(self, state: str, parent: dict[str, Any]) -> None:
        self.send("iopub", "status", {"execution_state": state}, parent)

    def reply(
        self, channel: str, message: RawMessage, header: dict[str, Any], content: dict[str, Any]
    ) -> None:
        reply_type = header["msg_type"].replace("_request", "_reply")
        self.send(channel, reply_type, content, header, idents=message.idents)

    def answer(
        self, channel: str, message: RawMessage, header: dict[str, Any], content: dict[str, Any]
    ) -> None:
        """Reply to a request the proxy handles itself, framed by busy and idle."""
        self.status("busy", header)
        self.reply(channel, message, header, content)
        self.status("idle", header)

    def print(self, parent: dict[str, Any], text: str) -> None:
        """A line of the proxy's own on the cell's stdout."""
        self.send("iopub", "stream", {"name": "stdout", "text": text + "\n"}, parent)

    async def send_input_request(self, frames: list[bytes], patience: float = 10.0) -> None:
        """Send to the frontend's stdin, waiting while its socket connects."""
        deadline = time.monotonic() + patience
        while True:
            try:
                await self.sockets["stdin"].send_multipart(frames, copy=False)
                return
            except zmq.ZMQError as e:
                if e.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                    log.warning("could not deliver an input_request to the frontend: %s", e)
                    return
            await asyncio.sleep(0.05)


def _heartbeat(url: str) -> None:
    """Echo heartbeat pings, in a thread of its own, like ipykernel."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    sock.bind(url)
    with contextlib.suppress(zmq.ZMQError):
        zmq.proxy(sock, sock)


class Background:
    """The proxy's background tasks: each is kept until it ends, and its failure logged."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


async def watch_parent(on_gone: Callable[[], None]) -> None:
    """Call ``on_gone`` when the process that started us (``JPY_PARENT_PID``) is gone."""
    parent = int(os.environ.get("JPY_PARENT_PID", "0") or 0)
    if parent <= 1:
        return
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    log.warning("parent process %d exited; shutting down", parent)
    on_gone()


@dataclass(frozen=True)
class ProxyIO:
    """What every part of the proxy shares: the wire session, the frontend's sockets, its tasks."""

    session: WireSession
    sockets: FrontendSockets
    background: Background
