"""Benchmarks measure nbseal as it runs once installed: from bytecode.

pip compiles a wheel's modules as it installs them. An editable checkout
gets its bytecode as modules are first imported, unless
PYTHONDONTWRITEBYTECODE is set (it is on these machines), when every
process compiles all of nbseal again: about 100 ms more of each proxy's
start here (`import nbseal.kernel.proxy` 330-390 ms against 235-290 ms).
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import nbseal

__all__ = ["as_installed"]


def as_installed(*sources: Path) -> str:
    """Compile nbseal's modules (and those under each of ``sources``); one line to print."""
    folders = [Path(nbseal.__file__).parent, *sources]
    for folder in folders:
        # Written where the interpreter looks, whatever the variable says.
        compileall.compile_dir(folder, quiet=1, workers=1)
    why = " (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"bytecode compiled for {', '.join(map(str, folders))}{why}, as pip does at install"
