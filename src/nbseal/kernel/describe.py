"""``#seal describe``: the notebook's environments as an HTML table and as text."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from nbseal.backends import backend_for, backend_for_requirements
from nbseal.kernel.pool import EnvironmentSlot

__all__ = ["describe_bundle"]

_COLUMNS = (
    "environment",
    "kernel",
    "state",
    "language",
    "pin",
    "packages",
    "store key",
    "sandbox",
)
# Where an environment's packages come from, when its backend says (a Debian
# tree's suite and mirror); a column only when some row has it.
_SOURCE = "source"
# Packages not taken as the pin has them (fallen forward, built from source).
_NOTES = "not as pinned"
# The Python an environment runs on, when its backend says (and how it differs
# from the lock's).
_PYTHON = "python"


def _backend_fields(slot: EnvironmentSlot) -> dict[str, Any]:
    """What the environment's backend adds to its row (a Debian tree: suite and mirror)."""
    lock = slot.built.lock if slot.built is not None else slot.lock
    try:
        if lock is None:
            backend = backend_for_requirements(slot.spec.requirements)
        else:
            backend = backend_for(lock.backend)
    except ValueError:  # a lock of a backend this nbseal does not know
        return {}
    return backend.describe(lock) or {}


def _row(name: str, slot: EnvironmentSlot, current: str, sandbox: str) -> dict[str, Any]:
    kernel = slot.kernel
    language = ""
    if kernel is not None:
        language = str(kernel.kernel_info.get("language_info", {}).get("name", ""))
    packages = []
    if slot.built is not None:
        packages = [f"{p.name}=={p.version}" for p in slot.built.lock.packages()]
    row: dict[str, Any] = {
        "environment": name + (" (current)" if name == current else ""),
        "kernel": kernel.command.name if kernel is not None else "not started",
        # warm: started before any cell asked (kernel/warm.py); with its memory.
        "state": _state(slot),
        "language": language,
        "pin": slot.spec.pin,
        "packages": packages or list(slot.spec.requirements),
        "store key": slot.built.key[:12] if slot.built is not None else "not built",
        "sandbox": sandbox,
    }
    lock = slot.built.lock if slot.built is not None else slot.lock
    if lock is not None and lock.fall_forwards:
        row[_NOTES] = [str(note) for note in lock.fall_forwards]
    row.update(_backend_fields(slot))
    return row


def _state(slot: EnvironmentSlot) -> str:
    kernel = slot.live_kernel
    size = kernel.resident_mb if kernel is not None else None
    return slot.state if size is None else f"{slot.state}, {size:.0f} MB"


def describe_bundle(
    slots: Mapping[str, EnvironmentSlot], current: str, sandbox: str
) -> dict[str, Any]:
    """The table of ``#seal describe``; ``sandbox`` is the session's policy in one line."""
    rows = [_row(name, slot, current, sandbox) for name, slot in slots.items()]
    columns: tuple[str, ...] = _COLUMNS
    if any(_SOURCE in row for row in rows):
        columns = (*_COLUMNS[:5], _SOURCE, *_COLUMNS[5:])
    if any(_PYTHON in row for row in rows):
        columns = (*columns[:4], _PYTHON, *columns[4:])
    if any(_NOTES in row for row in rows):
        columns = (*columns[:-2], _NOTES, *columns[-2:])
    text_lines = []
    for row in rows:
        text_lines.append(
            f"{row['environment']}: kernel {row['kernel']} ({row['language'] or '?'}, "
            f"{row['state']}), "
            f"pin {row['pin']}, {len(row['packages'])} packages, key {row['store key']}, "
            f"sandbox {row['sandbox']}"
        )
        if _SOURCE in row:
            text_lines.append(f"    {row[_SOURCE]}")
        if _PYTHON in row:
            text_lines.append(f"    Python {row[_PYTHON]}")
        text_lines.extend(f"    not as pinned: {note}" for note in row.get(_NOTES, []))
        text_lines.extend(f"    {p}" for p in row["packages"])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if column == _NOTES:
                cells.append(f"<td>{'<br>'.join(html.escape(n) for n in value)}</td>")
            elif column == "packages":
                items = "<br>".join(html.escape(p) for p in value)
                cells.append(
                    f"<td><details><summary>{len(value)} packages</summary>{items}</details></td>"
                )
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = (
        f'<table class="nbseal-describe"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return {
        "text/plain": "\n".join(text_lines),
        "text/html": table,
        "application/vnd.nbseal.describe+json": rows,
    }
