"""What Linux says of a running process: ``/proc/PID/stat`` and ``/proc/PID/status``.

Apart from :mod:`nbseal.proc`, which runs programs with asyncio, so that
what only looks at processes (runtime folders' owners, before ``nbseal run``
starts its kernel) imports no asyncio.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["stat_fields", "status_field"]


def status_field(pid: int, name: str) -> list[str] | None:
    """The words of field ``name`` (``VmRSS``, ``NSpid``) of process ``pid``'s status.

    None when the process is gone or its status has no such field.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        key, _, words = line.partition(":")
        if key == name:
            return words.split()
    return None


def stat_fields(pid: int) -> list[str] | None:
    """The fields of process ``pid``'s ``/proc/PID/stat`` after its command name.

    The first is its state, the second its parent's pid; None once it is gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces and ")".
    return stat.rsplit(")", 1)[1].split()
