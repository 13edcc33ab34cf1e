"""A run's timeline across processes: ``nbseal run --verbose``.

When ``$NBSEAL_TIMELINE`` names a file, :func:`mark` appends one line per
event to it: the wall-clock time, the process (``nbseal run``, ``proxy``)
and what happened. The CLI sets it; the proxy inherits it through the
kernel's environment, so one file holds both processes' events, and
:func:`read_timeline` gives them back in order. Without the variable,
:func:`mark` does nothing (one dictionary look-up).

Lines are appended with one ``write`` of less than ``PIPE_BUF`` bytes on a
file opened with ``O_APPEND``, so the two processes' lines never interleave.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TIMELINE_ENV",
    "Event",
    "keep_timeline",
    "mark",
    "process_started_at",
    "read_timeline",
    "render",
]

TIMELINE_ENV = "NBSEAL_TIMELINE"


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the epoch
    who: str
    what: str


def keep_timeline() -> Path:
    """Start keeping a timeline for this process and those it starts: the file it goes to."""
    fd, name = tempfile.mkstemp(prefix="nbseal-timeline-")
    os.close(fd)
    os.environ[TIMELINE_ENV] = name
    return Path(name)


def mark(who: str, what: str, at: float | None = None) -> None:
    """Record that ``who`` did ``what`` now (or ``at``), if a timeline is being kept."""
    path = os.environ.get(TIMELINE_ENV)
    if not path:
        return
    text = what.replace("\t", " ").replace("\n", " ")[:200]
    line = f"{time.time() if at is None else at:.6f}\t{who}\t{text}\n".encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return  # a timeline is a diagnosis: it never stops a run
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def process_started_at() -> float | None:
    """When this process started (epoch seconds), from /proc; None where unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    since_start = uptime - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - since_start


def read_timeline(path: Path) -> list[Event]:
    """The events in ``path``, oldest first; lines that do not parse are skipped."""
    events = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            events.append(Event(float(parts[0]), parts[1], parts[2]))
        except ValueError:
            continue
    return sorted(events, key=lambda event: event.at)


def render(events: list[Event]) -> list[str]:
    """One line per event: seconds since the first, the step since the one before, who, what."""
    if not events:
        return []
    origin = events[0].at
    lines = []
    previous = origin
    width = max(len(event.who) for event in events)
    for event in events:
        lines.append(
            f"{event.at - origin:8.3f} s  +{(event.at - previous) * 1000:7.1f} ms  "
            f"{event.who:<{width}}  {event.what}"
        )
        previous = event.at
    return lines
