"""``nbseal lock``: resolve every environment of a notebook into ``metadata.nbseal``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbseal.backends import backend_for
from nbseal.environments import resolve
from nbseal.lock import Lock
from nbseal.notebook import (
    code_sources,
    metadata_data,
    metadata_locks,
    read_notebook,
    set_data,
    set_locks,
    stored_locks,
    write_notebook,
)
from nbseal.plan import Declaration, plan_notebook
from nbseal.progress import Progress
from nbseal.store import EnvironmentStore

__all__ = ["LockStatus", "check_locks", "lock_notebook", "now_instant"]


@dataclass(frozen=True)
class LockStatus:
    """One environment's lock after ``nbseal lock`` or ``--check``.

    ``state`` is "kept" (the stored lock fits), "upgraded" (it fits, and is
    rewritten in the current format without a re-resolve), "locked" (resolved
    now), "missing", "stale" or "unused" (locked, but no longer declared).
    """

    name: str
    state: str
    reason: str = ""
    lock: Lock | None = None

    @property
    def ok(self) -> bool:
        return self.state in {"kept", "upgraded", "locked"}


def now_instant() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _declarations(path: Path) -> tuple[Any, dict[str, Declaration], dict[str, dict[str, str]]]:
    notebook = read_notebook(path)
    plan = plan_notebook(code_sources(notebook))
    data = {d.name: {"url": d.url, "sha256": d.sha256} for d in plan.data}
    return notebook, plan.locked_environments(), data


def check_locks(path: Path) -> list[LockStatus]:
    """Compare ``metadata.nbseal`` with what the notebook declares; resolves nothing."""
    notebook, declared, data = _declarations(path)
    locks = metadata_locks(notebook)
    statuses = []
    for name, declaration in declared.items():
        lock = locks.get(name)
        if lock is None:
            statuses.append(LockStatus(name, "missing", "no lock in metadata.nbseal"))
            continue
        reason = declaration.staleness(lock)
        statuses.append(LockStatus(name, "stale" if reason else "kept", reason or "", lock))
    statuses.extend(
        LockStatus(name, "unused", "locked but no longer declared", lock)
        for name, lock in locks.items()
        if name not in declared
    )
    recorded = metadata_data(notebook)
    for name in sorted(set(data) | set(recorded)):
        if data.get(name) == recorded.get(name):
            statuses.append(LockStatus(f"data {name}", "kept", f"sha256 {data[name]['sha256']}"))
        else:
            why = "not recorded" if name not in recorded else "differs from the notebook"
            statuses.append(LockStatus(f"data {name}", "stale", f"metadata.nbseal.data {why}"))
    return statuses


async def _lock_all(
    declared: dict[str, Declaration],
    candidates: dict[str, list[Lock]],
    current: dict[str, Lock],
    store: EnvironmentStore,
    progress_for: Callable[[str], Progress],
) -> list[LockStatus]:
    statuses = []
    instant = now_instant()
    for name, declaration in declared.items():
        found = candidates.get(name, [])
        lock = declaration.fitting(found)
        upgraded = backend_for(lock.backend).upgraded(lock) if lock is not None else None
        if upgraded is not None:
            note = "the stored lock fits; upgraded to the current format, versions unchanged"
            statuses.append(LockStatus(name, "upgraded", note, upgraded))
            continue
        if lock is not None and lock == current.get(name):
            statuses.append(LockStatus(name, "kept", "the stored lock fits", lock))
            continue
        if lock is not None:
            # What a kernel really ran (saved in a cell output) beats a fresh resolution.
            statuses.append(LockStatus(name, "locked", "taken from a cell output", lock))
            continue
        why = (declaration.staleness(found[0]) if found else None) or "no lock yet"
        pin_note = "" if declaration.pin else f" (unpinned: resolved as of {instant})"
        lock = await resolve(declaration.spec(instant), store, progress_for(name))
        statuses.append(LockStatus(name, "locked", f"{why}{pin_note}", lock))
    return statuses


def lock_notebook(
    path: Path,
    *,
    store: EnvironmentStore | None = None,
    progress_for: Callable[[str], Progress] = Progress,
) -> list[LockStatus]:
    """Lock every environment of the notebook at ``path`` and write the file atomically.

    A lock already in the file (metadata or a cell output) that still fits its
    declaration is kept, so re-locking changes nothing that did not change.
    """
    notebook, declared, data = _declarations(path)
    statuses = asyncio.run(
        _lock_all(
            declared,
            stored_locks(notebook),
            metadata_locks(notebook),
            store or EnvironmentStore(),
            progress_for,
        )
    )
    locks = {s.name: s.lock for s in statuses if s.lock is not None}
    before = {name: lock.to_json() for name, lock in metadata_locks(notebook).items()}
    changed = before != {name: lock.to_json() for name, lock in locks.items()}
    if changed or metadata_data(notebook) != data:
        set_locks(notebook, locks)
        set_data(notebook, data)
        write_notebook(notebook, path)
    removed = [LockStatus(n, "unused", "removed: no longer declared") for n in before]
    recorded = [
        LockStatus(f"data {name}", "kept", f"sha256 {entry['sha256']}")
        for name, entry in data.items()
    ]
    return statuses + [s for s in removed if s.name not in locks] + recorded
