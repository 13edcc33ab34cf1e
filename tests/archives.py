"""Unpacking archives the tests made or checked by hash, on any Python 3.10+.

PEP 706's ``data`` filter (3.12, backported to 3.10.12 and 3.11.4) is used
where the Python has it; Debian 12's 3.11.2 does not, and there the archive,
being known content, is unpacked as it is.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable
from pathlib import Path


def extract_known(
    archive: tarfile.TarFile, where: Path, members: Iterable[tarfile.TarInfo] | None = None
) -> None:
    """Unpack ``members`` (all by default) of a known ``archive`` into ``where``."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(where, members=members, filter="data")
    else:
        archive.extractall(where, members=members)
