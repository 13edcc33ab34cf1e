"""What the proxy shows in a cell: progress, errors, tables. HTML with text fallback."""

from __future__ import annotations

import html
import os
import uuid
from traceback import format_exception
from typing import TYPE_CHECKING, Any

from nbseal.errors import NbsealError
from nbseal.kernel.app import FrontendSockets
from nbseal.progress import ProgressEvent

if TYPE_CHECKING:
    from nbseal.lock import Lock
    from nbseal.store import BuiltEnvironment

__all__ = [
    "PROGRESS_MIME",
    "ProgressDisplay",
    "already_running",
    "error_content",
    "progress_bundle",
]

PROGRESS_MIME = "application/vnd.nbseal.progress+json"


def already_running(name: str, lock: Lock, built: BuiltEnvironment | None) -> ProgressEvent | None:
    """The summary of a define cell whose kernel was already running: nothing was built."""
    if built is None:
        return None
    step = f"{len(lock.packages())} packages, kernel already running (key {built.key[:12]})"
    return ProgressEvent(name, step, 0.0, done=True)


def progress_bundle(event: ProgressEvent) -> dict[str, Any]:
    if event.failed:
        mark = "✗"
    elif event.done:
        mark = "✓"
    else:
        mark = "…"
    text = f"{mark} nbseal · {event.title}: {event.step}"
    if not event.done:
        text += f" ({event.elapsed:.1f} s)"
    color = "#b00" if event.failed else ("#080" if event.done else "#555")
    bar = ""
    if event.fraction is not None and not event.done:
        percent = round(100 * event.fraction)
        bar = f'<progress value="{percent}" max="100" style="width:20em"></progress> {percent}% '
        text = f"{text} [{percent}%]"
    return {
        "text/plain": text,
        "text/html": (
            f'<div style="font-family:monospace;color:{color}">{bar}{html.escape(text)}</div>'
        ),
        PROGRESS_MIME: {
            "title": event.title,
            "step": event.step,
            "elapsed": round(event.elapsed, 3),
            "done": event.done,
            "failed": event.failed,
            "fraction": event.fraction,
        },
    }


def error_content(exc: NbsealError, execution_count: int | None = None) -> dict[str, Any]:
    """An ``error`` message body: nbseal's class as ename, a short traceback.

    The traceback is what the user needs (message, context, hint); nbseal's
    own Python stack only with ``NBSEAL_TRACEBACK=1`` in the kernel's environment.
    """
    red, reset = "\x1b[31m", "\x1b[0m"
    traceback = [f"{red}{exc.ename}{reset}: {exc.message}"]
    if exc.context:
        traceback.append(exc.context)
    if exc.hint:
        traceback.append(f"hint: {exc.hint}")
    if os.environ.get("NBSEAL_TRACEBACK"):
        # Asked for (nbseal's own developers, bug reports): where in nbseal it happened.
        traceback.append("".join(format_exception(exc)).rstrip())
    content: dict[str, Any] = {
        "ename": exc.ename,
        "evalue": exc.message,
        "traceback": traceback,
    }
    if execution_count is not None:
        content["execution_count"] = execution_count
    return content


class ProgressDisplay:
    """One display in a cell that a build's progress updates in place."""

    def __init__(self, sockets: FrontendSockets, parent: dict[str, Any]) -> None:
        self.sockets = sockets
        self.parent = parent
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
        self.sockets.send("iopub", msg_type, content, self.parent)
