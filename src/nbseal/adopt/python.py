"""Which Python `nbseal adopt` asks for.

A notebook pinned before this Python's feature release came out was written
for an older CPython, and today's releases of its packages may have dropped
what it used (``inspect.getargspec``, ``base64.encodestring``, pandas'
``DatetimeIndex(start=)``). When the CPython current at the pin is on this
machine, adopt writes ``python=auto`` on the environment line, which builds
on it (see :mod:`nbseal.backends.interpreters`); ``--python this`` keeps
today's interpreter.

Better than the pin's date is what the notebook's metadata records: the
Python that ran its stored outputs (``language_info.version``). When that
series is older than this Python and on this machine, adopt writes it
(``python=3.7``): a new CPython takes months to get its packages' wheels,
and the one current at the pin may have had few (sktime's notebooks of
2020-10 ran on 3.7.8; 3.9, current then, had no sktime wheel before 0.8, a
year later, so the environment fell forward to releases built against a
newer numpy than the pin's).
"""

from __future__ import annotations

import asyncio
import re
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
    request: str = "auto"  # what python= asks for: auto, or the series the notebook records

    @property
    def option(self) -> str | None:
        """What the environment line says (``python=auto``, ``python=3.7``), when found."""
        return f"python={self.request}" if self.found else None


def _key(series: str) -> tuple[int, ...]:
    return tuple(int(p) for p in series.split("."))


def pick_python(
    pin: str, provider: InterpreterProvider, recorded: str | None = None
) -> PythonPick | None:
    """The CPython the notebook's metadata ``recorded`` (``3.7.8``) when it is older
    than this one and here; else what ``python=auto`` would give at ``pin``, when the
    pin is older than this Python's feature release (None when it is not: this Python
    is the pin's)."""
    from nbseal.backends.interpreters import nearest_python

    here = python_series(host_python_version())
    if recorded is not None and re.fullmatch(r"3\.\d+(\.\d+)?\S*", recorded):
        series = python_series(recorded)
        if _key(series) < _key(here):
            found, _ = asyncio.run(provider.find(series))
            if found is not None:
                why = (
                    f"CPython {recorded} ran the stored outputs (the notebook's metadata), "
                    f"found at {found}"
                )
                return PythonPick(series, found, why, series, request=series)
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
