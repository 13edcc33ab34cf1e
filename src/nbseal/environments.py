"""Realise an environment spec: resolve (or reuse a resolution), then build or reuse."""

from __future__ import annotations

import tempfile
from pathlib import Path

from nbseal.backends import backend_for, backend_for_requirements
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec, host_platform
from nbseal.progress import Progress
from nbseal.store import BuiltEnvironment, EnvironmentStore

__all__ = ["realize", "resolve"]


async def resolve(spec: EnvironmentSpec, store: EnvironmentStore, progress: Progress) -> Lock:
    """Return the lock of ``spec``; a pinned spec is resolved once and remembered."""
    backend = backend_for_requirements(spec.requirements)
    python = backend.interpreter_key(spec)
    cached = store.cached_resolution(spec, python, host_platform())
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="nbseal-resolve-") as tmp:
        lock = await backend.resolve(spec, Path(tmp), progress)
    store.save_resolution(spec, python, host_platform(), lock)
    return lock


async def realize(
    spec: EnvironmentSpec,
    store: EnvironmentStore,
    progress: Progress,
    *,
    lock: Lock | None = None,
) -> BuiltEnvironment:
    """Build (or reuse) the environment of ``spec``, from ``lock`` when given."""
    if lock is None:
        lock = await resolve(spec, store, progress)
    built = await store.ensure(lock, backend_for(lock.backend), progress)
    count = len(lock.packages())
    how = "reused from the store" if built.reused else "built and stored"
    summary = f"{count} packages, {how} in {progress.elapsed():.1f} s (key {built.key[:12]})"
    # What was not taken as the pin has it stays in the cell's last line.
    notes = "".join(f"\n  {note}" for note in lock.fall_forwards)
    progress.finish(summary + notes)
    return built
