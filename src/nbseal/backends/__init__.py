"""Backends turn an environment spec into a lock, and a lock into a built tree.

The registry here is the one place that knows which backends exist: each is
registered with its name (what ``Lock.backend`` records), the requirement
prefix it claims (``deb:``, ``guix:``; none for the default, PyPI) and a
function that makes it, so that Debian and Guix are imported only when an
environment needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nbseal.backends.base import Backend
from nbseal.backends.uv import UvBackend
from nbseal.directives import DEB_REQUIREMENT_PREFIX, GUIX_REQUIREMENT_PREFIX

__all__ = [
    "Backend",
    "UvBackend",
    "backend_for",
    "backend_for_requirements",
    "register_backend",
    "registered_backends",
    "unregister_backend",
]


@dataclass(frozen=True)
class _Registration:
    make: Callable[[], Backend]
    # Claims an environment whose requirements all start with it; None: the default.
    prefix: str | None


_REGISTRY: dict[str, _Registration] = {}


def register_backend(name: str, make: Callable[[], Backend], *, prefix: str | None = None) -> None:
    """Make backend ``name`` known; ``make`` is called each time it is wanted.

    With ``prefix``, it builds the environments whose requirements all start
    with ``prefix``; without, it is the default (PyPI requirements). Registering
    a name again replaces it.
    """
    if prefix is not None and not prefix:
        raise ValueError("a backend's requirement prefix is None or a non-empty string")
    for other, registration in _REGISTRY.items():
        if other != name and registration.prefix == prefix:
            claimed = f"prefix {prefix!r}" if prefix else "requirements without a prefix"
            raise ValueError(f"backend {other!r} already claims {claimed}")
    _REGISTRY[name] = _Registration(make, prefix)


def unregister_backend(name: str) -> None:
    """Forget backend ``name`` (a stand-in registered by a test, say)."""
    _REGISTRY.pop(name, None)


def backend_for(name: str) -> Backend:
    """The backend that a lock's ``backend`` field names."""
    registration = _REGISTRY.get(name)
    if registration is None:
        raise ValueError(f"unknown backend {name!r}")
    backend = registration.make()
    if backend.name != name:
        raise ValueError(f"backend {name!r} was registered with one named {backend.name!r}")
    return backend


def backend_for_requirements(requirements: Sequence[str]) -> Backend:
    """The backend that builds an environment of ``requirements``.

    The one whose prefix every requirement has, else the default's.
    """
    default = None
    for name, registration in _REGISTRY.items():
        prefix = registration.prefix
        if prefix is None:
            default = name
        elif requirements and all(r.startswith(prefix) for r in requirements):
            return backend_for(name)
    if default is None:
        raise ValueError("no backend takes requirements without a prefix")
    return backend_for(default)


def registered_backends() -> list[Backend]:
    """One of every registered backend (this imports them all)."""
    return [backend_for(name) for name in _REGISTRY]


def _debian() -> Backend:
    from nbseal.backends.debian import DebianBackend  # only Debian specs need it

    return DebianBackend()


def _guix() -> Backend:
    from nbseal.backends.guix import GuixBackend  # small; runs `guix` only when asked

    return GuixBackend()


register_backend(UvBackend.name, UvBackend)
register_backend("deb", _debian, prefix=DEB_REQUIREMENT_PREFIX)
register_backend("guix", _guix, prefix=GUIX_REQUIREMENT_PREFIX)
