"""What a package index offers: releases, their files, when each was uploaded.

Read from the index's JSON API (PEP 691, with PEP 700's ``upload-time``) at
the index uv is configured with. The functions that choose a release are
pure, so they are tested on saved index pages: a file *installs* on a target
when it is a wheel whose tags the target's interpreter accepts (``packaging.tags``,
as pip and uv judge it), and a release is what uv picks at a cutoff when it
is the newest one with a file uploaded before that cutoff.

Every request goes through one opener with one TLS context: loading the CA
bundle for each request was most of `nbseal adopt`'s time (old wheels have
no PEP 658 metadata, so each is read with four or five range requests).
A wheel's METADATA, once read, is kept under the cache root by the wheel's
SHA-256 (``index-metadata/``): the same file always has the same metadata,
so a second notebook of a project asks the index only for its pages.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, platform_tags, sys_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from nbseal.errors import ResolutionError
from nbseal.fsutil import atomic_write_text
from nbseal.paths import cache_root

__all__ = [
    "Choice",
    "IndexFile",
    "ProjectIndex",
    "Target",
    "first_installable",
    "index_url",
    "instant",
    "newest_at",
    "project_files",
    "target_for",
]

DEFAULT_INDEX = "https://pypi.org/simple"
_ACCEPT = "application/vnd.pypi.simple.v1+json"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies from the environment) with one TLS context."""
    # create_default_context reads SSL_CERT_FILE / SSL_CERT_DIR, as urllib's own does.
    https = urllib.request.HTTPSHandler(context=ssl.create_default_context())
    return urllib.request.build_opener(https)


def _open(request: urllib.request.Request) -> Any:
    return _opener().open(request, timeout=60)


def index_url(environ: Mapping[str, str] | None = None) -> str:
    """The index uv resolves against: ``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``, else PyPI."""
    env = os.environ if environ is None else environ
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        value = env.get(var, "").strip()
        if value:
            return value.split()[0].rstrip("/")
    return DEFAULT_INDEX


def instant(text: str) -> datetime:
    """An RFC 3339 instant (``Z`` or an offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class IndexFile:
    """One file of a project on the index; ``tags`` is None for an sdist."""

    filename: str
    version: Version
    tags: frozenset[Tag] | None
    uploaded: datetime
    requires_python: SpecifierSet | None
    yanked: bool
    url: str
    has_metadata: bool
    sha256: str = ""  # lowercase hex, as the index gives it; "" when it gives none


def project_files(page: Mapping[str, Any]) -> list[IndexFile]:
    """The wheels and sdists of a PEP 691 project page (other files, and files
    without an upload time, are left out: uv cannot date them either)."""
    found = []
    for entry in page.get("files", []):
        name = str(entry.get("filename", ""))
        uploaded = entry.get("upload-time")
        if not uploaded:
            continue
        try:
            if name.endswith(".whl"):
                _, version, _, tags = parse_wheel_filename(name)
                wheel_tags: frozenset[Tag] | None = frozenset(tags)
            else:
                _, version = parse_sdist_filename(name)
                wheel_tags = None
            requires = entry.get("requires-python")
            specifier = SpecifierSet(requires) if requires else None
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidSpecifier):
            continue
        metadata = entry.get("core-metadata", entry.get("data-dist-info-metadata"))
        hashes = entry.get("hashes")
        sha256 = str(hashes.get("sha256", "")) if isinstance(hashes, dict) else ""
        found.append(
            IndexFile(
                filename=name,
                version=version,
                tags=wheel_tags,
                uploaded=instant(str(uploaded)),
                requires_python=specifier,
                yanked=bool(entry.get("yanked")),
                url=str(entry.get("url", "")),
                has_metadata=bool(metadata),
                sha256=sha256.lower() if _SHA256.fullmatch(sha256) else "",
            )
        )
    return found


@dataclass(frozen=True)
class Target:
    """The interpreter and platform an environment is resolved for."""

    tags: frozenset[Tag]
    python_version: str  # e.g. "3.11.7"
    label: str  # e.g. "CPython 3.11"

    def admits(self, file: IndexFile) -> bool:
        """Whether uv may take ``file``'s release at all (not yanked, Python fits)."""
        if file.yanked or file.version.is_prerelease:
            return False
        return file.requires_python is None or file.requires_python.contains(
            self.python_version, prereleases=True
        )

    def installs(self, file: IndexFile) -> bool:
        """Whether ``file`` installs here without compiling: a wheel with a tag we accept."""
        return self.admits(file) and file.tags is not None and bool(file.tags & self.tags)


@dataclass(frozen=True)
class Choice:
    """A release, and the cutoff at which uv picks it (just after its wheel was uploaded)."""

    version: Version
    cutoff: str


def newest_at(
    files: Iterable[IndexFile],
    target: Target,
    before: datetime,
    specifier: SpecifierSet | None = None,
) -> Version | None:
    """The release uv picks with the cutoff ``before``: the newest one that has a
    file uploaded before it (and fits ``specifier``)."""
    versions = {
        f.version
        for f in files
        if f.uploaded < before
        and target.admits(f)
        and (specifier is None or specifier.contains(f.version, prereleases=False))
    }
    return max(versions, default=None)


def installs_at(files: Sequence[IndexFile], target: Target, version: Version) -> bool:
    """Whether ``version`` has a file that installs on ``target`` without compiling."""
    return any(f.version == version and target.installs(f) for f in files)


def first_installable(
    files: Sequence[IndexFile],
    target: Target,
    after: datetime,
    specifier: SpecifierSet | None = None,
) -> Choice | None:
    """The earliest cutoff after ``after`` at which uv picks a release that installs
    on ``target`` without compiling; None if no release ever did.

    Tried at each upload of an installable wheel, in time order: the cutoff is
    the next second, and the release uv then picks (the newest available,
    which may be another one) must itself have an installable wheel by then.
    """
    moments = sorted({f.uploaded for f in files if target.installs(f) and f.uploaded >= after})
    for moment in moments:
        cutoff = moment.replace(microsecond=0) + timedelta(seconds=1)
        version = newest_at(files, target, cutoff, specifier)
        if version is not None and any(
            f.version == version and target.installs(f) and f.uploaded < cutoff for f in files
        ):
            return Choice(version, _rfc3339(cutoff))
    return None


def first_release(
    files: Sequence[IndexFile], target: Target, after: datetime, specifier: SpecifierSet
) -> Choice | None:
    """The earliest cutoff after ``after`` at which some release fits ``specifier``
    (an sdist will do: for a requirement no wheel meets)."""
    for moment in sorted({f.uploaded for f in files if f.uploaded >= after}):
        cutoff = moment.replace(microsecond=0) + timedelta(seconds=1)
        version = newest_at(files, target, cutoff, specifier)
        if version is not None:
            return Choice(version, _rfc3339(cutoff))
    return None


# Facts an interpreter of any age tells about itself (no packaging needed there).
_FACTS_SCRIPT = (
    "import platform, sys, sysconfig; print(platform.python_version()); "
    "print(sys.implementation.name); print(sysconfig.get_config_var('SOABI') or '')"
)


@functools.lru_cache(maxsize=8)
def target_for(python: str) -> Target:
    """The tags, version and name of the interpreter ``python`` (ours: no subprocess).

    Another interpreter on this machine shares our platform tags; its
    version and ABI (``cpython-36m-...`` → ``cp36m``) give the rest.
    """
    import platform

    if os.path.realpath(python) == os.path.realpath(sys.executable):
        version, implementation = platform.python_version(), sys.implementation.name
        tags = frozenset(sys_tags())
    else:
        result = subprocess.run(
            [python, "-c", _FACTS_SCRIPT], capture_output=True, text=True, check=False
        )
        lines = result.stdout.splitlines()
        if result.returncode != 0 or len(lines) < 2:
            raise ResolutionError.interpreter_does_not_run(python, result.stderr.strip())
        version, implementation = lines[0], lines[1]
        soabi = lines[2] if len(lines) > 2 else ""
        tags = _tags_of(version, implementation, soabi)
    names = {"cpython": "CPython", "pypy": "PyPy"}
    label = f"{names.get(implementation, implementation)} {'.'.join(version.split('.')[:2])}"
    return Target(tags, version, label)


def _tags_of(version: str, implementation: str, soabi: str) -> frozenset[Tag]:
    """The wheel tags of a CPython ``version`` with ``soabi`` on this platform."""
    major, minor = (int(p) for p in version.split(".")[:2])
    platforms = list(platform_tags())
    interpreter = f"cp{major}{minor}"
    abis = [f"cp{soabi.split('-')[1]}"] if soabi.startswith("cpython-") else []
    found: list[Tag] = []
    if implementation == "cpython":
        found += cpython_tags((major, minor), abis=abis, platforms=platforms)
    found += compatible_tags((major, minor), interpreter, platforms)
    return frozenset(found)


class ProjectIndex:
    """Project pages and release metadata from one index, each fetched once."""

    def __init__(self, url: str | None = None, metadata_cache: Path | None = None) -> None:
        self.url = (url or index_url()).rstrip("/")
        self._pages: dict[str, list[IndexFile]] = {}
        # Wheels' METADATA by the wheel's SHA-256 (immutable: never stale).
        self.metadata_cache = metadata_cache or cache_root() / "index-metadata"

    def _get(self, url: str, accept: str) -> bytes:
        request = urllib.request.Request(url, headers={"Accept": accept})
        try:
            with _open(request) as response:
                body: bytes = response.read()
                return body
        except (OSError, ValueError) as exc:
            raise ResolutionError.index_unreadable(url, str(exc)) from exc

    def files(self, name: str) -> list[IndexFile]:
        """The files of project ``name`` (fetched once); none when the index has no such
        project (a package from a local file or a URL the notebook names)."""
        key = canonicalize_name(name)
        if key not in self._pages:
            try:
                body = self._get(f"{self.url}/{key}/", _ACCEPT)
            except ResolutionError as exc:
                if (
                    not isinstance(exc.__cause__, urllib.error.HTTPError)
                    or exc.__cause__.code != 404
                ):
                    raise
                self._pages[key] = []
                return []
            try:
                page = json.loads(body)
            except ValueError as exc:
                raise ResolutionError.index_unreadable(
                    f"{self.url}/{key}/", f"not PEP 691 JSON ({exc})"
                ) from exc
            self._pages[key] = project_files(page)
        return self._pages[key]

    def requirements(self, name: str, version: Version, target: Target) -> list[Requirement]:
        """What release ``version`` of ``name`` requires on ``target``, from the core
        metadata of a wheel that installs there; [] when there is none."""
        text = self.metadata(name, version, target)
        found = []
        for line in HeaderParser().parsestr(text).get_all("Requires-Dist") or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is None or marker.evaluate({"extra": ""}):
                found.append(requirement)
        return found

    def metadata(self, name: str, version: Version, target: Target) -> str:
        """The core metadata of a wheel of ``name`` ``version`` that installs on
        ``target``; "" when there is none."""
        wheel = next(
            (f for f in self.files(name) if f.version == version and target.installs(f)),
            None,
        )
        return "" if wheel is None else self._metadata(wheel)

    def _metadata(self, wheel: IndexFile) -> str:
        """A wheel's METADATA: from the cache, else the index's copy (PEP 658), else
        read out of the wheel with HTTP range requests (the zip's directory, then
        that one member). What was read is cached; nothing is cached for a wheel
        the index gives no SHA-256 for, or when nothing could be read."""
        cached = self.metadata_cache / wheel.sha256[:2] / wheel.sha256 if wheel.sha256 else None
        if cached is not None and cached.is_file():
            return cached.read_text(encoding="utf-8")
        text = self._fetch_metadata(wheel)
        if cached is not None and text:
            with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
                atomic_write_text(cached, text)
        return text

    def _fetch_metadata(self, wheel: IndexFile) -> str:
        if wheel.has_metadata:
            return self._get(wheel.url + ".metadata", "*/*").decode(errors="replace")
        try:
            with zipfile.ZipFile(_RangeReader(wheel.url)) as archive:
                member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                return archive.read(member).decode(errors="replace")
        except (StopIteration, zipfile.BadZipFile, OSError):
            return ""


class _RangeReader(io.RawIOBase):
    """A remote file read by HTTP range requests, enough for :mod:`zipfile`."""

    def __init__(self, url: str) -> None:
        self.url = url
        request = urllib.request.Request(url, method="HEAD")
        with _open(request) as response:
            self.size = int(response.headers["Content-Length"])
        self.position = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end <= self.position:
            return b""
        request = urllib.request.Request(
            self.url, headers={"Range": f"bytes={self.position}-{end - 1}"}
        )
        with _open(request) as response:
            data: bytes = response.read()
        if response.status != 206:  # the whole file: take the part asked for
            data = data[self.position : end]
        self.position += len(data)
        return data
