"""The lock of a Debian root file system, and the store of the .debs it names.

A Debian environment's :class:`~nbseal.lock.Lock` carries, in its ``pylock``
text, a TOML document of its own (no PEP 751 fields, but the same top-level
``[[packages]]`` array with ``name`` and ``version``, so ``Lock.packages()``
lists the Debian packages unchanged)::

    # nbseal Debian lock: a root file system built by mmdebstrap from these .debs
    # resolved-at: 2026-11-29T03:30:00Z
    lock-version = 1
    suite = "bookworm"
    architecture = "amd64"
    include = ["r-base-core", "r-cran-irkernel"]
    pin-enforced = false
    dpkg-options = ["path-exclude=/usr/share/man/*", ...]

    [[sources]]
    uri = "http://deb.debian.org/debian"
    suite = "bookworm"
    components = ["main"]

    [[packages]]
    name = "r-base-core"
    version = "4.2.2.20221110-2"
    architecture = "amd64"
    sha256 = "..."
    size = 26590492
    filename = "pool/main/r/r-base/r-base-core_4.2.2.20221110-2_amd64.deb"
    source = 0

    [[build-tools]]          # .debs the build needs but does not install (eatmydata)
    ...

Comment lines are left out of ``Lock.key``; the resolution time lives there so
two resolutions to the same .debs share one store entry. Everything else
(packages, sources, dpkg options) is part of the key.

The .debs live content-addressed in ``<cache root>/debs/<sha256>.deb``
(:class:`DebCache`), written atomically and verified, so a lock rebuilds
offline long after the mirror dropped those versions. A .deb's modification
time says when a resolution or build last used it; ``nbseal env gc`` removes
the .debs that no lock in the store names and that were not used for a day
(:meth:`DebCache.gc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbseal.digests import sha256_file
from nbseal.errors import DebianError, LockFormatError
from nbseal.lock import TomlValue, backend_lock_data, toml_assignments, toml_table
from nbseal.paths import cache_root

__all__ = [
    "DEBIAN_LOCK_VERSION",
    "DEB_GRACE_SECONDS",
    "DebCache",
    "DebGcResult",
    "DebianLockData",
    "DebianPackage",
    "DebianSource",
    "IndexEntry",
    "read_packages_index",
    "sha256_file",
]

DEBIAN_LOCK_VERSION = 1
_CHUNK = 1 << 20
# A .deb used this recently stays even when no stored lock names it: the
# resolution or build using it has not put its lock into the store yet (a
# resolved tree waits up to a day for its build, see debian.PREBUILT_MAX_AGE).
DEB_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DebianSource:
    """One apt source: ``deb URI SUITE COMPONENT...``."""

    uri: str
    suite: str
    components: tuple[str, ...] = ("main",)
    options: str = ""  # e.g. "check-valid-until=no", written inside [ ]

    def line(self) -> str:
        opts = f"[{self.options}] " if self.options else ""
        return f"deb {opts}{self.uri} {self.suite} {' '.join(self.components)}"


@dataclass(frozen=True)
class DebianPackage:
    """One .deb, exactly: what dpkg installed and the archive file it came from."""

    name: str
    version: str
    architecture: str
    sha256: str
    size: int
    filename: str  # relative to the source's URI (pool/main/...)
    source: int = 0  # index into the lock's sources

    @property
    def pin(self) -> str:
        """``name=version`` as apt's install command line takes it."""
        return f"{self.name}={self.version}"


@dataclass(frozen=True)
class DebianLockData:
    """The Debian-specific content of a lock (its ``pylock`` text, parsed)."""

    suite: str
    architecture: str
    include: tuple[str, ...]
    sources: tuple[DebianSource, ...]
    packages: tuple[DebianPackage, ...]
    build_tools: tuple[DebianPackage, ...] = ()
    dpkg_options: tuple[str, ...] = ()
    pin_enforced: bool = False
    resolved_at: str = ""  # informational; a comment, so not part of the key

    # -- text ---------------------------------------------------------------
    def dumps(self) -> str:
        lines = ["# nbseal Debian lock: a root file system built by mmdebstrap from these .debs"]
        if self.resolved_at:
            lines.append(f"# resolved-at: {self.resolved_at}")
        lines += toml_assignments(
            {
                "lock-version": DEBIAN_LOCK_VERSION,
                "suite": self.suite,
                "architecture": self.architecture,
                "include": self.include,
                "pin-enforced": self.pin_enforced,
                "dpkg-options": self.dpkg_options,
            }
        )
        for source in self.sources:
            fields: dict[str, TomlValue] = {
                "uri": source.uri,
                "suite": source.suite,
                "components": source.components,
            }
            if source.options:
                fields["options"] = source.options
            lines += toml_table("sources", fields)
        for table, packages in (("packages", self.packages), ("build-tools", self.build_tools)):
            for p in sorted(packages, key=lambda p: (p.name, p.architecture)):
                lines += toml_table(
                    table,
                    {
                        "name": p.name,
                        "version": p.version,
                        "architecture": p.architecture,
                        "sha256": p.sha256,
                        "size": p.size,
                        "filename": p.filename,
                        "source": p.source,
                    },
                )
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str) -> DebianLockData:
        data = backend_lock_data(text, backend="Debian", version=DEBIAN_LOCK_VERSION)
        resolved_at = ""
        for line in text.splitlines():
            if line.startswith("# resolved-at:"):
                resolved_at = line.partition(":")[2].strip()
        try:
            return cls(
                suite=str(data["suite"]),
                architecture=str(data["architecture"]),
                include=tuple(str(i) for i in data.get("include", [])),
                sources=tuple(
                    DebianSource(
                        str(s["uri"]),
                        str(s["suite"]),
                        tuple(str(c) for c in s.get("components", ["main"])),
                        str(s.get("options", "")),
                    )
                    for s in data.get("sources", [])
                ),
                packages=tuple(_package(p) for p in data.get("packages", [])),
                build_tools=tuple(_package(p) for p in data.get("build-tools", [])),
                dpkg_options=tuple(str(o) for o in data.get("dpkg-options", [])),
                pin_enforced=bool(data.get("pin-enforced", False)),
                resolved_at=resolved_at,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LockFormatError("Debian", "incomplete", detail=repr(exc)) from exc

    def installed_set(self) -> set[tuple[str, str, str]]:
        return {(p.name, p.version, p.architecture) for p in self.packages}

    def all_debs(self) -> tuple[DebianPackage, ...]:
        """Every .deb a build of this lock reads: the packages and the build tools."""
        return (*self.packages, *self.build_tools)


def _package(p: dict[str, Any]) -> DebianPackage:
    return DebianPackage(
        name=str(p["name"]),
        version=str(p["version"]),
        architecture=str(p["architecture"]),
        sha256=str(p["sha256"]).lower(),
        size=int(p["size"]),
        filename=str(p["filename"]),
        source=int(p.get("source", 0)),
    )


# ---------------------------------------------------------------------------
# apt's Packages indexes
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str


_WANTED_FIELDS = {"Package", "Version", "Architecture", "Filename", "Size", "SHA256"}


def _stanzas(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    stanza: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            if stanza:
                yield stanza
                stanza = {}
            continue
        if line[0] in " \t":
            continue  # continuation of a multi-line field we do not need
        key, sep, value = line.partition(":")
        if sep and key in _WANTED_FIELDS:
            stanza[key] = value.strip()
    if stanza:
        yield stanza


def read_packages_index(path: Path, names: set[str] | None = None) -> Iterator[IndexEntry]:
    """Entries of an (uncompressed) apt ``Packages`` file, optionally only ``names``."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for st in _stanzas(handle):
            name = st.get("Package", "")
            if names is not None and name not in names:
                continue
            try:
                yield IndexEntry(
                    name=name,
                    version=st["Version"],
                    architecture=st["Architecture"],
                    filename=st["Filename"],
                    size=int(st["Size"]),
                    sha256=st["SHA256"].lower(),
                )
            except (KeyError, ValueError):
                continue


# ---------------------------------------------------------------------------
# the content-addressed store of .debs
# ---------------------------------------------------------------------------
class DebCache:
    """``<root>/<sha256>.deb``: every .deb any lock named, verified, read-only."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_root() / "debs"

    def path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.deb"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def missing(self, packages: Sequence[DebianPackage]) -> list[DebianPackage]:
        return [p for p in packages if not self.has(p.sha256)]

    def add_file(self, source: Path, sha256: str) -> Path:
        """Store ``source`` (hard link when possible, else copy) if its hash is ``sha256``."""
        final = self.path(sha256)
        if final.is_file():
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".add-", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            # A hard link shares the inode with the source (which a build's
            # unprivileged ids wrote, and could still change): make the file
            # private before hashing it, unless it is ours alone already.
            if tmp.stat().st_nlink > 1:
                copy = tmp.with_suffix(".copy")
                shutil.copyfile(tmp, copy)
                os.replace(copy, tmp)
            actual = sha256_file(tmp)
            if actual != sha256:
                raise DebianError.deb_altered(source.name, sha256, actual)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def fetch(self, package: DebianPackage, base_uris: Sequence[str], timeout: float = 60) -> Path:
        """Download ``package`` from the first of ``base_uris`` that has it (verified)."""
        if self.has(package.sha256):
            return self.path(package.sha256)
        self.root.mkdir(parents=True, exist_ok=True)
        failures = []
        for base in base_uris:
            url = f"{base.rstrip('/')}/{package.filename}"
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".fetch-", suffix=".tmp")
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as response:
                    while chunk := response.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != package.sha256:
                    failures.append(f"{url}: SHA-256 {digest.hexdigest()}, not {package.sha256}")
                    continue
                os.chmod(tmp, 0o444)
                os.replace(tmp, self.path(package.sha256))
                return self.path(package.sha256)
            except (OSError, urllib.error.URLError) as exc:
                failures.append(f"{url}: {exc}")
            finally:
                tmp.unlink(missing_ok=True)
        raise DebianError.deb_nowhere(
            package.name, package.version, tried=failures, store=self.root
        )

    def mark_used(self, packages: Iterable[DebianPackage]) -> None:
        """Note that a resolution or build uses these .debs now (their mtime); see :meth:`gc`."""
        for package in packages:
            with contextlib.suppress(OSError):
                os.utime(self.path(package.sha256))

    def gc(self, keep: set[str], unused_for: float = DEB_GRACE_SECONDS) -> DebGcResult:
        """Remove the .debs whose SHA-256 is not in ``keep`` and not used for ``unused_for`` s.

        Leftover temporary files of interrupted downloads go too, after the same time.
        """
        cutoff = time.time() - unused_for
        removed, freed, recent = [], 0, 0
        if not self.root.is_dir():
            return DebGcResult((), 0, 0)
        for path in sorted(self.root.iterdir()):
            name = path.name
            if name.endswith(".deb") and name[: -len(".deb")] in keep:
                continue
            if not (name.endswith(".deb") or (name.startswith(".") and name.endswith(".tmp"))):
                continue  # not ours
            try:
                info = path.stat()
                if info.st_mtime >= cutoff:
                    recent += name.endswith(".deb")
                    continue
                path.unlink()
            except OSError:
                continue
            if name.endswith(".deb"):
                removed.append(name[: -len(".deb")])
                freed += info.st_size
        return DebGcResult(tuple(removed), freed, recent)

    async def fetch_all(
        self, packages: Sequence[DebianPackage], uris_for: dict[int, list[str]]
    ) -> None:
        for package in self.missing(packages):
            await asyncio.to_thread(self.fetch, package, uris_for.get(package.source, []))


@dataclass(frozen=True)
class DebGcResult:
    removed: tuple[str, ...]  # SHA-256 of the removed .debs
    freed_bytes: int
    kept_recent: int  # unreferenced, but used within the grace time


def _open_url(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "nbseal"})
    return urllib.request.urlopen(request, timeout=timeout)
