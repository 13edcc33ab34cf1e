"""Progress of long work (resolving, building), reported to whoever listens.

The work reports steps to a :class:`Progress`; the kernel turns them into a
display that updates in place, the CLI into lines on stderr. Several listeners
may watch one build: two cells waiting for the same environment both see it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Progress", "ProgressEvent"]


@dataclass(frozen=True)
class ProgressEvent:
    title: str
    step: str
    elapsed: float
    done: bool = False
    failed: bool = False
    # Share of the work done (0..1) when it is known, e.g. bytes of a download.
    fraction: float | None = None


Listener = Callable[[ProgressEvent], None]


@dataclass
class Progress:
    title: str
    started: float = field(default_factory=time.monotonic)
    last: ProgressEvent | None = None
    _listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)
        if self.last is not None:
            listener(self.last)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, text: str, fraction: float | None = None) -> None:
        self._emit(text, fraction=fraction)

    def finish(self, summary: str) -> None:
        self._emit(summary, done=True)

    def fail(self, summary: str) -> None:
        self._emit(summary, done=True, failed=True)

    def _emit(
        self, text: str, *, done: bool = False, failed: bool = False, fraction: float | None = None
    ) -> None:
        elapsed = time.monotonic() - self.started
        event = ProgressEvent(self.title, text, elapsed, done, failed, fraction)
        self.last = event
        for listener in list(self._listeners):
            listener(event)
