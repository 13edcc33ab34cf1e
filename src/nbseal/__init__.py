"""nbseal: reproducible Jupyter notebooks.

A notebook declares the environments its cells run in; the ``nbseal`` kernel
builds them into a content-addressed store and relays every message to the
real kernel of the current environment.
"""

from nbseal.errors import NbsealError

__version__ = "0.1.0"

__all__ = ["NbsealError", "__version__"]
