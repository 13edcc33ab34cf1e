"""Keeps modules nbseal never uses out of a process: importing this module does it.

jsonschema, which nbformat imports, loads ``rfc3987_syntax`` when it is
installed (JupyterLab's jupyter_events brings it) to check the ``iri`` format,
which no notebook schema uses; that module builds a grammar when imported,
0.6 to 1.2 s of CPU. A ``None`` in ``sys.modules`` makes such an import fail
at once, as if the module were absent, and jsonschema goes on without that
one check. Imported first by the ``nbseal`` command and by the forkserver of
``verify --cluster local:N`` (each before nbformat), never by the library.
"""

from __future__ import annotations

import sys

__all__ = ["UNUSED"]

UNUSED = ("rfc3987_syntax",)

for _name in UNUSED:
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]
