"""Locks: what an environment holds, exactly, and the store key derived from it.

A lock is a PEP 751 ``pylock.toml`` (exact versions, artifact URLs, SHA-256
hashes) plus the interpreter version and platform it was resolved for. The
store key is the hash of those three, so two notebooks whose specs resolve
to the same packages share one built environment.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Lock", "LockedPackage"]

LOCK_FORMAT = 1


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str


@dataclass(frozen=True)
class Lock:
    backend: str
    requirements: tuple[str, ...]
    python: str
    platform: str
    exclude_newer: str
    pylock: str

    @property
    def key(self) -> str:
        """Content address: changes exactly when the installed bits would."""
        digest = hashlib.sha256()
        for part in (self.backend, self.python, self.platform, _canonical(self.pylock)):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def packages(self) -> list[LockedPackage]:
        data = tomllib.loads(self.pylock)
        return sorted(
            (LockedPackage(p["name"], str(p.get("version", ""))) for p in data.get("packages", [])),
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
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)


def _canonical(pylock: str) -> str:
    # Comment lines hold the command and temporary paths uv ran with.
    return "\n".join(line for line in pylock.splitlines() if not line.startswith("#")).strip()


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
