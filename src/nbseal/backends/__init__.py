"""Backends turn an environment spec into a lock, and a lock into a built tree."""

from nbseal.backends.base import Backend
from nbseal.backends.uv import UvBackend

__all__ = ["Backend", "UvBackend", "backend_for"]


def backend_for(name: str) -> Backend:
    if name == "uv":
        return UvBackend()
    if name == "deb":
        from nbseal.backends.debian import DebianBackend  # only Debian specs need it

        return DebianBackend()
    if name == "guix":
        from nbseal.backends.guix import GuixBackend  # small; runs `guix` only when asked

        return GuixBackend()
    raise ValueError(f"unknown backend {name!r}")
