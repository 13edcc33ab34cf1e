"""Which Python `nbseal adopt` asks for.

A notebook pinned before this Python's feature release came out was written
for an older CPython, and today's releases of its packages may have dropped
what it used (``inspect.getargspec``, ``base64.encodestring``, pandas'
``DatetimeIndex(start=)``). When the CPython current at the pin is on this
machine, adopt writes ``python=auto`` on the environment line, which builds
on it (see :mod:`nbseal.backends.interpreters`); ``--python this`` keeps
today's interpreter.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbseal.pythons import host_python_version, python_at, python_release, python_series

if TYPE_CHECKING:
    from nbseal.backends.interpreters import InterpreterProvider

__all__ = ["AUTO_SETUPTOOLS", "PythonPick", "pick_python"]

# What old code imports as pkg_resources, on whichever Python the pin gets:
# the build tools' cutoff (see nbseal.backends.revive) takes the newest
# release that runs there (59.6 on 3.6, 68.0 on 3.7); 81 dropped pkg_resources.
AUTO_SETUPTOOLS = "setuptools<81"


@dataclass(frozen=True)
class PythonPick:
    """The CPython series current at the pin, and where it (or the nearest series
    after it that is older than this Python) is here; ``found`` None: nowhere."""

    wanted: str
    found: str | None
    why: str  # as adopt shows it
    series: str | None = None  # the series found

    @property
    def option(self) -> str | None:
        """What the environment line says: ``python=auto`` when such a CPython is here."""
        return "python=auto" if self.found else None


def pick_python(pin: str, provider: InterpreterProvider) -> PythonPick | None:
    """What ``python=auto`` would give at ``pin``, when the pin is older than this
    Python's feature release (None when it is not: this Python is the pin's)."""
    from nbseal.backends.interpreters import nearest_python

    here = python_series(host_python_version())
    released = python_release(here)
    wanted = python_at(pin)
    if released is None or wanted is None or pin >= released or wanted == here:
        return None
    day = pin[:10]
    nearest = asyncio.run(nearest_python(wanted, provider))
    if nearest.python is not None and nearest.series == wanted:
        why = f"CPython {wanted} was current at {day}, found at {nearest.python}"
        return PythonPick(wanted, nearest.python, why, wanted)
    cause = nearest.why or "none found"
    if nearest.python is not None:
        why = (
            f"CPython {wanted} was current at {day} but cannot be had here ({cause});"
            f" {nearest.series}, the nearest after it, found at {nearest.python}"
        )
        return PythonPick(wanted, nearest.python, why, nearest.series)
    why = (
        f"CPython {wanted} was current at {day} but cannot be had here ({cause});"
        f" the environment runs on this Python, {host_python_version()}"
    )
    return PythonPick(wanted, None, why)
