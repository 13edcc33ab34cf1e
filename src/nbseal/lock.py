"""Locks: what an environment holds, exactly, and the store key derived from it.

A lock is a PEP 751 ``pylock.toml`` (exact versions, artifact URLs, SHA-256
hashes) plus the interpreter version and platform it was made on (a PyPI
lock serves Linux x86_64 and aarch64 alike: see :mod:`nbseal.pylock_platforms`).
The store key is the hash of those three, so two notebooks whose specs resolve
to the same packages share one built environment. Its ``backend`` field says
which backend made it and so what ``pylock`` holds: PEP 751 text for
:data:`PEP751_BACKEND` (PyPI), the backend's own TOML for the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from nbseal._toml import tomllib
from nbseal.errors import LockFormatError
from nbseal.pylock_platforms import served_platforms

__all__ = [
    "PEP751_BACKEND",
    "FallForward",
    "Lock",
    "LockedPackage",
    "backend_lock_data",
    "index_hosts",
    "relaxed_pylock",
    "toml_assignments",
    "toml_table",
    "unnamed_sources",
]

LOCK_FORMAT = 1
# The ``backend`` of a lock whose ``pylock`` is PEP 751 text: the PyPI backend's.
PEP751_BACKEND = "uv"

# Hosts a fresh resolution may fetch from without the notebook naming them.
DEFAULT_INDEX_HOSTS = ("pypi.org", "files.pythonhosted.org")
# uv's own settings of where packages come from (each may hold several URLs).
_INDEX_VARS = (
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
    "UV_FIND_LINKS",
)


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str


@dataclass(frozen=True)
class FallForward:
    """A package the resolution did not take as the pin has it, and why.

    ``pinned`` is the version the pin alone gives (None when the pin has
    none); ``chosen`` the version locked. Equal versions mean the package is
    kept and built from source.
    """

    name: str
    pinned: str | None
    chosen: str
    reason: str

    def __str__(self) -> str:
        if self.pinned == self.chosen:
            return f"{self.name} {self.chosen}: {self.reason}"
        return f"{self.name} {self.pinned or '(none)'} → {self.chosen}: {self.reason}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FallForward:
        pinned = data.get("pinned")
        return cls(
            name=str(data["name"]),
            pinned=None if pinned is None else str(pinned),
            chosen=str(data["chosen"]),
            reason=str(data["reason"]),
        )


@dataclass(frozen=True)
class Lock:
    backend: str
    requirements: tuple[str, ...]
    python: str
    platform: str
    exclude_newer: str
    pylock: str
    # Packages taken at another version than the pin gives, or built from source.
    fall_forwards: tuple[FallForward, ...] = ()
    # How packages without a wheel were treated: "" (fall forward) or "source".
    build: str = ""
    # Per-package cutoffs the resolution had beside ``exclude_newer`` (NAME, INSTANT).
    exclude_newer_package: tuple[tuple[str, str], ...] = ()
    # The Python releases the lock serves: a series ("3.11": any 3.11.x) or
    # one release ("3.11.7"). Empty in locks made before: they served
    # ``python`` only (pylock's requires-python is that release).
    serves: str = ""

    @property
    def key(self) -> str:
        """Content address: changes exactly when the installed bits would."""
        digest = hashlib.sha256()
        for part in (self.backend, self.python, self.platform, _canonical(self.pylock)):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms the lock installs on (sysconfig's names, ``linux-x86_64``):
        those its PEP 751 ``environments`` list, else the one it was made on."""
        if self.backend == PEP751_BACKEND:
            served = served_platforms(self.pylock)
            if served:
                return served
        return (self.platform,)

    def packages(self) -> list[LockedPackage]:
        """What the lock installs here (a universal lock's packages for other
        platforms, behind markers, are left out)."""
        data = tomllib.loads(self.pylock)
        return sorted(
            (
                LockedPackage(p["name"], str(p.get("version", "")))
                for p in data.get("packages", [])
                if _applies(p.get("marker"))
            ),
            key=lambda p: p.name,
        )

    def version_of(self, name: str) -> str | None:
        wanted = _normalize(name)
        for package in self.packages():
            if _normalize(package.name) == wanted:
                return package.version
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requirements"] = list(self.requirements)
        # Absent when empty: a lock without them reads, and writes, as before.
        data["fall_forwards"] = [asdict(f) for f in self.fall_forwards]
        data["exclude_newer_package"] = dict(self.exclude_newer_package)
        for optional in ("fall_forwards", "build", "exclude_newer_package", "serves"):
            if not data[optional]:
                del data[optional]
        data["format"] = LOCK_FORMAT
        data["key"] = self.key
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lock:
        return cls(
            backend=str(data["backend"]),
            requirements=tuple(str(r) for r in data["requirements"]),
            python=str(data["python"]),
            platform=str(data["platform"]),
            exclude_newer=str(data["exclude_newer"]),
            pylock=str(data["pylock"]),
            fall_forwards=tuple(FallForward.from_json(f) for f in data.get("fall_forwards", [])),
            build=str(data.get("build", "")),
            serves=str(data.get("serves", "")),
            exclude_newer_package=tuple(
                (str(k), str(v)) for k, v in sorted(data.get("exclude_newer_package", {}).items())
            ),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)


def _applies(marker: object) -> bool:
    """Whether a PEP 751 package's marker holds for the Python nbseal builds with."""
    if not isinstance(marker, str) or not marker:
        return True
    from packaging.markers import InvalidMarker, Marker

    try:
        return Marker(marker).evaluate()
    except InvalidMarker:
        return True


def relaxed_pylock(pylock: str, series: str) -> str:
    """``pylock`` with its ``requires-python`` opened to the whole series (``>=3.11``).

    A lock made before locks served a series says ``>=3.11.7`` (the patch
    release it was made with), though its wheels are the same for any 3.11.x.
    """
    return re.sub(
        r'^requires-python = "[^"]*"$',
        f'requires-python = ">={series}"',
        pylock,
        count=1,
        flags=re.MULTILINE,
    )


def index_hosts(environ: dict[str, str] | None = None) -> frozenset[str]:
    """The hosts a resolution on this machine fetches packages from.

    PyPI, plus the hosts of uv's index settings (``UV_INDEX=name=URL ...`` and
    the like), since a lock resolved against a mirror names the mirror.
    """
    env = os.environ if environ is None else environ
    hosts = set(DEFAULT_INDEX_HOSTS)
    for var in _INDEX_VARS:
        for entry in re.split(r"[\s,]+", env.get(var, "")):
            url = entry.partition("=")[2] if "=" in entry.split("://")[0] else entry
            host = urlsplit(url).hostname
            if host:
                hosts.add(host.lower())
    return frozenset(hosts)


def unnamed_sources(
    lock: Lock, requirements: Sequence[str], hosts: Iterable[str] | None = None
) -> list[str]:
    """Artifacts of a uv lock that come from where nothing vouches for them.

    A package may come from a package index this machine uses, or from the
    URL or path that a declared requirement gives it (``NAME @ URL``). A lock
    taken from a notebook's metadata or outputs is data anyone could have
    edited: one that adds a package from another host, or from a local path,
    is not the declaration it claims to be. Each returned entry is
    ``NAME from WHERE``; empty when every artifact is accounted for.
    """
    # Only PEP 751 text names artifacts by URL. Known by the lock's own field,
    # not by the requirements: the field chooses the backend that builds it, so
    # a lock claiming to be PyPI's is always judged here.
    if lock.backend != PEP751_BACKEND:
        return []
    allowed = {h.lower() for h in (index_hosts() if hosts is None else hosts)}
    direct = {
        _normalize(r.partition("@")[0].strip().split("[")[0])
        for r in requirements
        if "@" in r and "://" in r.partition("@")[2]
    }
    try:
        packages = tomllib.loads(lock.pylock).get("packages", [])
    except tomllib.TOMLDecodeError:
        return ["the lock itself (not valid TOML)"]
    found = []
    for package in packages:
        name = str(package.get("name", "?"))
        if _normalize(name) in direct:
            continue
        for artifact in _artifacts(package):
            url = str(artifact.get("url", ""))
            parts = urlsplit(url)
            trusted = parts.scheme == "https" and (parts.hostname or "").lower() in allowed
            if not trusted:
                where = url or f"path {artifact.get('path', '?')}"
                found.append(f"{name} from {where}")
    return found


def backend_lock_data(text: str, *, backend: str, version: int) -> dict[str, Any]:
    """The TOML of a backend's own lock (Debian, Guix), if it is in format ``version``.

    Raises :class:`~nbseal.errors.LockFormatError` (``backend`` names the
    lock in its message) for text that is not TOML or of another format.
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockFormatError(backend, "invalid", detail=str(exc)) from exc
    found = data.get("lock-version")
    if found != version:
        raise LockFormatError(backend, "version", found=found, expected=version)
    return data


# What a backend's own lock holds: strings, numbers, flags and lists of strings.
TomlValue = str | int | bool | Sequence[str]


def _toml_value(value: TomlValue, ascii_only: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):  # a JSON string is a valid TOML basic string
        return json.dumps(value, ensure_ascii=ascii_only)
    return "[" + ", ".join(_toml_value(item, ascii_only) for item in value) + "]"


def toml_assignments(fields: Mapping[str, TomlValue], *, ascii_only: bool = True) -> list[str]:
    """``key = value`` lines of a backend's own lock (the writing side of
    :func:`backend_lock_data`); ``ascii_only`` escapes other characters as ``\\uXXXX``."""
    return [f"{key} = {_toml_value(value, ascii_only)}" for key, value in fields.items()]


def toml_table(name: str, fields: Mapping[str, TomlValue], *, ascii_only: bool = True) -> list[str]:
    """One ``[[name]]`` entry of an array of tables, after a blank line."""
    return ["", f"[[{name}]]", *toml_assignments(fields, ascii_only=ascii_only)]


def _artifacts(package: dict[str, Any]) -> list[dict[str, Any]]:
    """The places PEP 751 lets a package entry install from."""
    found: list[dict[str, Any]] = []
    for key in ("sdist", "archive", "vcs", "directory"):
        if isinstance(package.get(key), dict):
            found.append(package[key])
    wheels = package.get("wheels", [])
    if isinstance(wheels, list):
        found.extend(w for w in wheels if isinstance(w, dict))
    return found


def _canonical(pylock: str) -> str:
    # Comment lines hold the command and temporary paths uv ran with.
    return "\n".join(line for line in pylock.splitlines() if not line.startswith("#")).strip()


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
