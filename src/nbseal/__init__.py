"""nbseal: reproducible Jupyter notebooks.

A notebook declares the environments its cells run in; the ``nbseal`` kernel
builds them into a content-addressed store and relays every message to the
real kernel of the current environment.
"""

from __future__ import annotations

# Not typing's: importing typing costs the kernel's first steps 10-20 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from nbseal.errors import NbsealError

__version__ = "0.1.0"

__all__ = ["NbsealError", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported when asked for: the nbseal kernel's first steps (sandbox/headstart.py)
    # import light modules of this package before nbseal.errors and what it imports.
    if name == "NbsealError":
        from nbseal.errors import NbsealError

        return NbsealError
    raise AttributeError(f"module 'nbseal' has no attribute {name!r}")
