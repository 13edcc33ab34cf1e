"""Where a PyPI environment's interpreter comes from: ``python=auto``.

``python=auto`` asks for the CPython that was current at the pin (3.6 for a
2018 pin), since that is what the notebook's packages were made for. An
:class:`InterpreterProvider` finds one; the default asks uv (``uv python
find``, then ``uv python install``). Where none can be had (no download, as
on a machine without network to python.org), the environment runs on the
Python nbseal runs on, and the lock and the cell say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nbseal import uv
from nbseal.lock import FallForward
from nbseal.plan import host_python, host_python_version
from nbseal.pythons import python_at

__all__ = [
    "InterpreterProvider",
    "PythonChoice",
    "UvPythons",
    "choose_python",
    "interpreter_provider",
    "set_interpreter_provider",
]


class InterpreterProvider(Protocol):
    async def find(self, request: str) -> tuple[str | None, str]:
        """The path of an interpreter for ``request`` (``3.6``), or None and why not."""


class UvPythons:
    """Interpreters uv finds or installs."""

    async def find(self, request: str) -> tuple[str | None, str]:
        return await uv.find_python(request)


_provider: InterpreterProvider = UvPythons()


def interpreter_provider() -> InterpreterProvider:
    return _provider


def set_interpreter_provider(provider: InterpreterProvider | None) -> None:
    """Use ``provider`` from now on (a stand-in, in a test); None: uv's again."""
    global _provider
    _provider = provider if provider is not None else UvPythons()


@dataclass(frozen=True)
class PythonChoice:
    python: str  # the interpreter's path
    note: FallForward | None  # set when the pin's Python could not be had


async def choose_python(pin: str) -> PythonChoice:
    """The interpreter ``python=auto`` gives at ``pin``: the CPython current then, else ours."""
    wanted = python_at(pin)
    if wanted is None:
        return PythonChoice(host_python(), None)
    if host_python_version().startswith(f"{wanted}."):
        return PythonChoice(host_python(), None)
    found, why = await interpreter_provider().find(wanted)
    if found is not None:
        return PythonChoice(found, None)
    reason = (
        f"python=auto: CPython {wanted}, current at the pin, cannot be had here"
        f" ({why or 'uv found none'}); the environment runs on this Python"
    )
    return PythonChoice(host_python(), FallForward("python", wanted, host_python_version(), reason))
