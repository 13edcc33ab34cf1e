"""apt's package indexes, read back into exact packages; where a .deb is downloaded from."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from nbseal.backends.debian.lock import (
    DebianLockData,
    DebianPackage,
    DebianSource,
    IndexEntry,
    read_packages_index,
)
from nbseal.backends.debian.sources import MIRROR_ENV_VAR, SNAPSHOT


# ---------------------------------------------------------------------------
# reading apt indexes
# ---------------------------------------------------------------------------
def _apt_quote(text: str) -> str:
    # apt's URItoFileName: these characters are %-escaped, then / becomes _.
    bad = '\\|{}[]<>"^~_=!@#$%^&*'
    return "".join(f"%{ord(c):02x}" if c in bad or not c.isprintable() else c for c in text)


def _list_prefix(source: DebianSource) -> str:
    uri = source.uri.rstrip("/")
    uri = re.sub(r"^[a-z+]+:(//)?", "", uri)
    uri = re.sub(r"^[^/@]*@", "", uri)  # user:password@
    return _apt_quote(f"{uri}/dists/{source.suite}/").replace("/", "_")


def _index(
    lists: Path, sources: Sequence[DebianSource], names: set[str]
) -> dict[tuple[str, str, str], tuple[IndexEntry, int]]:
    """(name, version, arch) → (entry, source number), from the build's apt lists."""
    found: dict[tuple[str, str, str], tuple[IndexEntry, int]] = {}
    for path in sorted(lists.glob("*_Packages")):
        number = 0
        for i, source in enumerate(sources):
            if path.name.startswith(_list_prefix(source)):
                number = i
                break
        for entry in read_packages_index(path, names):
            found.setdefault((entry.name, entry.version, entry.architecture), (entry, number))
    return found


def _locked(entry: IndexEntry, source: int) -> DebianPackage:
    return DebianPackage(
        entry.name,
        entry.version,
        entry.architecture,
        entry.sha256,
        entry.size,
        entry.filename,
        source,
    )


def _uris_for(data: DebianLockData) -> dict[int, list[str]]:
    """Where a missing .deb may be downloaded: the override first, then its own source."""
    override = os.environ.get(MIRROR_ENV_VAR, "").strip()
    extra = [override] if override and override != SNAPSHOT else []
    all_uris = [s.uri for s in data.sources]
    result = {}
    for number, source in enumerate(data.sources):
        ordered = [*extra, source.uri, *(u for u in all_uris if u != source.uri)]
        result[number] = list(dict.fromkeys(ordered))
    return result
