"""Sealing kernels: what they may see (:mod:`.policy`) and how (:mod:`.bwrap`)."""

from __future__ import annotations

import importlib

# Not typing's: importing typing costs the kernel's first steps 10-20 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from nbseal.sandbox.available import check_sandbox, find_bwrap
    from nbseal.sandbox.bwrap import BwrapLauncher
    from nbseal.sandbox.policy import SandboxPolicy, Share

__all__ = ["BwrapLauncher", "SandboxPolicy", "Share", "check_sandbox", "find_bwrap"]

_HOMES = {
    "BwrapLauncher": "bwrap",
    "SandboxPolicy": "policy",
    "Share": "policy",
    "check_sandbox": "available",
    "find_bwrap": "available",
}


def __getattr__(name: str) -> Any:
    # Imported when asked for: the head start (.headstart) runs before the
    # launcher's own imports, and must not pay for them.
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
