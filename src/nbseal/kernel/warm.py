"""Warm kernels: the notebook's stored environments, started before any cell asks.

When a notebook opens, every environment it declares whose lock it holds and
whose store entry exists can start with nothing to resolve or build. The pool
starts the first ones at once (the default environment, the first code
cell's); :class:`WarmPolicy` says how far to go beyond them: the other stored
environments start in the background, one at a time, while the kernels'
memory stays under a budget, so that a switch to one of them costs a
message. A warm kernel no cell has used is stopped after an idle timeout (its
next use starts it again, losing nothing: it never ran code); a redefined
environment's kernel is stopped where the notebook redefines it.

Both limits are the user's to set, in the environment of the process that
starts the kernel (Jupyter's, or ``nbseal run``'s):

- ``NBSEAL_WARM_MB``: the budget, in MB of resident memory of all kernels
  together (default 1024; 0 starts none beyond the first ones);
- ``NBSEAL_WARM_IDLE``: seconds an unused warm kernel is kept (default 900).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nbseal.errors import not_a_number
from nbseal.procfs import status_field

__all__ = ["WarmPolicy", "resident_mb"]

DEFAULT_BUDGET_MB = 1024
DEFAULT_IDLE_SECONDS = 900.0


@dataclass(frozen=True)
class WarmPolicy:
    budget_mb: float = DEFAULT_BUDGET_MB
    idle_seconds: float = DEFAULT_IDLE_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> WarmPolicy:
        environ = os.environ if environ is None else environ
        return cls(
            budget_mb=_number(environ, "NBSEAL_WARM_MB", DEFAULT_BUDGET_MB),
            idle_seconds=_number(environ, "NBSEAL_WARM_IDLE", DEFAULT_IDLE_SECONDS),
        )

    def room_for_another(self, resident: Iterable[float]) -> bool:
        """Whether one more kernel, as large as the largest running one, fits the budget."""
        if self.budget_mb <= 0:
            return False
        sizes = list(resident)
        return sum(sizes) + max(sizes, default=0.0) <= self.budget_mb

    @property
    def reap_every(self) -> float:
        """How often to look for idle warm kernels."""
        return max(0.5, min(30.0, self.idle_seconds / 4))


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        unit = "MB" if name.endswith("MB") else "seconds"
        raise not_a_number(name, raw, unit=unit, default=default)
    return value


def resident_mb(pid: int | None) -> float | None:
    """The resident memory of process ``pid`` in MB, or None if it cannot be read."""
    words = status_field(pid, "VmRSS") if pid is not None else None
    return int(words[0]) / 1024 if words else None  # kB
