"""``#seal describe``: the notebook's environments as an HTML table and as text."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbseal.kernel.pool import EnvironmentSlot

__all__ = ["describe_bundle"]

_COLUMNS = ("environment", "kernel", "language", "pin", "packages", "store key", "sandbox")
# Shown when some environment is a Debian root file system.
_SOURCE = "source"


def _debian_source(slot: EnvironmentSlot) -> dict[str, Any] | None:
    """Suite, mirror and sources of a Debian environment's lock; None for other backends."""
    lock = slot.built.lock if slot.built is not None else slot.lock
    if lock is None:
        if slot.spec.requirements and all(r.startswith("deb:") for r in slot.spec.requirements):
            return {"text": "Debian (not resolved yet)"}
        return None
    if lock.backend != "deb":
        return None
    from nbseal.backends.debian.lock import DebianLockData
    from nbseal.errors import BuildError

    try:
        data = DebianLockData.loads(lock.pylock)
    except BuildError:
        return {"text": "Debian (lock unreadable)"}
    mirror = data.sources[0].uri if data.sources else ""
    suites = list(dict.fromkeys(s.suite for s in data.sources))
    text = f"Debian {data.suite} ({data.architecture}) from {mirror}"
    if len(suites) > 1:
        text += f" ({', '.join(suites)})"
    if not data.pin_enforced:
        text += "; the pin is not enforced (a regular mirror has only its newest packages)"
    return {
        "text": text,
        "suite": data.suite,
        "architecture": data.architecture,
        "mirror": mirror,
        "sources": [s.line() for s in data.sources],
        "pin_enforced": data.pin_enforced,
    }


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
        "language": language,
        "pin": slot.spec.pin,
        "packages": packages or list(slot.spec.requirements),
        "store key": slot.built.key[:12] if slot.built is not None else "not built",
        "sandbox": sandbox,
    }
    debian = _debian_source(slot)
    if debian is not None:
        row[_SOURCE] = debian["text"]
        row["debian"] = debian
    return row


def describe_bundle(
    slots: Mapping[str, EnvironmentSlot], current: str, sandbox: str
) -> dict[str, Any]:
    """The table of ``#seal describe``; ``sandbox`` is the session's policy in one line."""
    rows = [_row(name, slot, current, sandbox) for name, slot in slots.items()]
    columns: tuple[str, ...] = _COLUMNS
    if any(_SOURCE in row for row in rows):
        columns = (*_COLUMNS[:4], _SOURCE, *_COLUMNS[4:])
    text_lines = []
    for row in rows:
        text_lines.append(
            f"{row['environment']}: kernel {row['kernel']} ({row['language'] or '?'}), "
            f"pin {row['pin']}, {len(row['packages'])} packages, key {row['store key']}, "
            f"sandbox {row['sandbox']}"
        )
        if _SOURCE in row:
            text_lines.append(f"    {row[_SOURCE]}")
        text_lines.extend(f"    {p}" for p in row["packages"])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if column == "packages":
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
