"""Where nbseal keeps its files.

Everything lives under one cache root so a user can see, measure and delete
it: ``$NBSEAL_CACHE_DIR`` when set, else the platform's user cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_root"]


def cache_root() -> Path:
    override = os.environ.get("NBSEAL_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("nbseal", appauthor=False))
