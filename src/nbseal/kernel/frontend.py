"""The frontend protocol: each request type the proxy receives, and who handles it.

Messages are dispatched by type through a table per channel, as in
ipykernel's ``kernelbase``. The proxy answers ``kernel_info``, ``shutdown``
and ``interrupt`` itself, queues ``execute_request``, routes comms, and
forwards anything else to the current environment's kernel. A handler's
exception is logged and the message dropped; it never takes the proxy down.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from typing import Any

from nbseal import __version__
from nbseal.kernel.app import ProxyIO
from nbseal.kernel.router import Router
from nbseal.kernel.wire import RawMessage, split_frames
from nbseal.timeline import mark

__all__ = ["PROTOCOL_VERSION", "FrontendProtocol", "Handler"]

log = logging.getLogger("nbseal.kernel")

PROTOCOL_VERSION = "5.3"

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


class FrontendProtocol:
    def __init__(self, io: ProxyIO, router: Router, *, on_shutdown: Callable[[bool], None]) -> None:
        self.io = io
        self.router = router
        self.on_shutdown = on_shutdown
        shell: dict[str, Handler] = {
            "execute_request": self._execute,
            "kernel_info_request": self._kernel_info,
            "comm_open": router.comm_open,
            "comm_info_request": router.comm_info,
            "comm_msg": router.comm_route,
            "comm_close": router.comm_route,
            "shutdown_request": self._shutdown,
        }
        control: dict[str, Handler] = {
            "kernel_info_request": self._kernel_info,
            "interrupt_request": self._interrupt,
            "shutdown_request": self._shutdown,
        }
        self.handlers: dict[str, dict[str, Handler]] = {"shell": shell, "control": control}

    async def serve(self, channel: str) -> None:
        """Read ``channel`` until cancelled, handing each verified message to its handler."""
        while True:
            frames = await self.io.sockets.receive(channel)
            try:
                message = split_frames(frames)
                if not message.verify(self.io.session):
                    log.warning("dropped a %s message with a bad signature", channel)
                    continue
                self._dispatch(channel, message, dict(message.header(self.io.session)))
            except Exception:
                log.exception("dropped a malformed %s message", channel)

    def _dispatch(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        if channel == "stdin":
            self.router.stdin(channel, message, header)
            return
        table = self.handlers[channel]
        handler = table.get(header.get("msg_type", ""), self.router.forward_to_current)
        handler(channel, message, header)

    # -- requests the proxy answers ------------------------------------------
    def _execute(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        self.router.queue.put(message)

    def _kernel_info(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        self.io.sockets.answer(channel, message, header, self.kernel_info())
        mark("proxy", "answered kernel_info")

    def kernel_info(self) -> dict[str, Any]:
        """The proxy's own kernel_info, in the current kernel's language."""
        kernel = self.router.pool.current_slot.kernel
        info = kernel.kernel_info if kernel is not None else {}
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
                f"Current environment {self.router.pool.current!r} runs {implementation}. "
                "Type `#seal help` for the directives."
            ),
            "help_links": _web_links(info.get("help_links", [])),
            "debugger": bool(info.get("debugger", False)),
        }

    def _shutdown(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        restart = bool(message.content(self.io.session).get("restart", False))

        async def shut() -> None:
            mark("proxy", "shutdown requested")
            self.router.pool.closing = True
            self.io.sockets.status("busy", header)
            await self.router.pool.stop_all()
            mark("proxy", "environments' kernels stopped")
            content = {"status": "ok", "restart": restart}
            self.io.sockets.reply(channel, message, header, content)
            self.io.sockets.send("iopub", "shutdown_reply", content, header)
            self.io.sockets.status("idle", header)
            self.on_shutdown(restart)

        self.io.background.spawn(shut())

    def _interrupt(self, channel: str, message: RawMessage, header: dict[str, Any]) -> None:
        async def interrupt() -> None:
            await self.interrupt()
            self.io.sockets.answer(channel, message, header, {"status": "ok"})

        self.io.background.spawn(interrupt())

    async def interrupt(self) -> None:
        """Stop the build or start a cell waits for, else interrupt the kernel running it."""
        running = self.router.queue.running
        if running is not None and running.preparing:
            self.router.pool.cancel_current_start()
            if self.router.queue.cancel_preparing():
                return
        kernel = running.kernel if running is not None else self.router.pool.current_kernel()
        if kernel is not None:
            await kernel.interrupt()


def _web_links(links: Any) -> list[dict[str, str]]:
    """A sub-kernel's help links that are web pages: JupyterLab opens them on a click,
    and a ``javascript:`` one would run in the page's origin."""
    if not isinstance(links, list):
        return []
    return [
        {"text": str(link.get("text", "")), "url": str(link["url"])}
        for link in links
        if isinstance(link, dict)
        and str(link.get("url", "")).lower().startswith(("https://", "http://"))
    ]
