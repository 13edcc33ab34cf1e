"""Where nbseal keeps its files.

Everything lives under one cache root so a user can see, measure and delete
it: ``$NBSEAL_CACHE_DIR`` when set, else the platform's user cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    override = os.environ.get("NBSEAL_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    # Imported here: the head start (sandbox/headstart.py) asks for the root
    # before the kernel's imports, and platformdirs imports platform.
    import platformdirs

    return Path(platformdirs.user_cache_dir("nbseal", appauthor=False))
