"""Python interpreters: the one environments are built on, versions, series, releases.

Environments are built on nbseal's own interpreter, or on ``$NBSEAL_PYTHON``
(any CPython on the machine, e.g. Debian's ``/usr/bin/python3``). A lock
serves a *series* (``3.11``: any 3.11.x), or one release when the notebook
says ``python=3.11.7``. When each CPython feature release came out (facts
from python.org, not a policy): a resolution pinned before its interpreter
existed holds releases that never ran on it; ``python=auto`` picks the
interpreter current at a pin.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys

from nbseal.errors import BuildError

__all__ = [
    "CPYTHON_RELEASES",
    "PYTHON_ENV_VAR",
    "host_python",
    "host_python_version",
    "interpreter_note",
    "python_at",
    "python_release",
    "python_series",
    "python_version_of",
    "same_series",
]

# The interpreter environments are built on, when not nbseal's own.
PYTHON_ENV_VAR = "NBSEAL_PYTHON"


def host_python() -> str:
    """The interpreter environments are built on: ``$NBSEAL_PYTHON``, else nbseal's own."""
    return os.environ.get(PYTHON_ENV_VAR) or sys.executable


def host_python_version() -> str:
    return python_version_of(host_python())


@functools.lru_cache(maxsize=8)
def python_version_of(python: str) -> str:
    """The version of the interpreter at ``python`` (no subprocess for our own)."""
    if python == sys.executable:
        return platform.python_version()
    try:
        result = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError.python_does_not_run(python, str(exc)) from exc
    if result.returncode != 0:
        raise BuildError.python_does_not_run(python, result.stderr.strip())
    return result.stdout.strip()


def python_series(version: str) -> str:
    """``3.11`` of ``3.11.7``: the releases a lock made with ``version`` serves."""
    return ".".join(version.split(".")[:2])


def same_series(version: str, series: str) -> bool:
    """Whether ``version`` (3.11.2) is one of ``series`` (3.11, or exactly 3.11.7)."""
    return version == series or version.startswith(f"{series}.")


# X.Y -> the day X.Y.0 was released.
CPYTHON_RELEASES = {
    "3.2": "2011-02-20T00:00:00Z",
    "3.3": "2012-09-29T00:00:00Z",
    "3.4": "2014-03-16T00:00:00Z",
    "3.5": "2015-09-13T00:00:00Z",
    "3.6": "2016-12-23T00:00:00Z",
    "3.7": "2018-06-27T00:00:00Z",
    "3.8": "2019-10-14T00:00:00Z",
    "3.9": "2020-10-05T00:00:00Z",
    "3.10": "2021-10-04T00:00:00Z",
    "3.11": "2022-10-24T00:00:00Z",
    "3.12": "2023-10-02T00:00:00Z",
    "3.13": "2024-10-07T00:00:00Z",
    "3.14": "2025-10-07T00:00:00Z",
}


def python_release(version: str) -> str | None:
    """The instant CPython ``version`` (``3.11`` or ``3.11.7``) came out, if known."""
    return CPYTHON_RELEASES.get(".".join(version.split(".")[:2]))


def python_at(pin: str) -> str | None:
    """The newest CPython feature release out at ``pin`` (RFC 3339), if any is known."""
    out = [v for v, day in CPYTHON_RELEASES.items() if day <= pin]
    return max(out, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)


def interpreter_note(locked: str, built: str) -> str | None:
    """What differs between the Python a lock was made with and the one that built it."""
    if not locked or locked == built:
        return None
    what = "patch release differs" if python_series(locked) == python_series(built) else "differs"
    return f"built with {built}, locked with {locked}: {what}"
