"""One PEP 751 lock for Linux x86_64 and aarch64: resolutions per machine, merged.

uv's ``pip compile`` resolves for one platform (``--python-platform``) and
lists only the wheels that platform installs; ``--universal`` resolves for
every OS and every Python from ``requires-python`` up, which the per-package
cutoffs of a revived resolution (:mod:`nbseal.backends.revive`, made for one
interpreter) do not hold for, and ``pip compile`` cannot narrow it (uv takes
``environments`` only in a project's ``pyproject.toml``). So nbseal resolves
once per Linux machine, with the same pin, cutoffs and constraints, and
merges here: a package at one version everywhere is one entry holding every
machine's wheels (and their SHA-256); where the machines differ, each
version gets an entry of its own behind a ``platform_machine`` marker. The
lock's ``environments`` (PEP 751) say which machines it serves.

Pure: text in, text out.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbseal._toml import tomllib

__all__ = [
    "LINUX_MACHINES",
    "Merged",
    "machine_of",
    "merge_machines",
    "served_platforms",
    "uv_target",
]

# The Linux machines a lock serves (``platform.machine()``, sysconfig's suffix).
LINUX_MACHINES = ("x86_64", "aarch64")
_SERVED = re.compile(r"platform_machine\s*==\s*'([^']+)'")


def machine_of(platform: str) -> str | None:
    """``aarch64`` of sysconfig's ``linux-aarch64``; None off Linux or for other machines."""
    system, _, machine = platform.partition("-")
    return machine if system == "linux" and machine in LINUX_MACHINES else None


def uv_target(machine: str) -> str:
    """uv's ``--python-platform`` for a glibc Linux machine (manylinux_2_28 and older)."""
    return f"{machine}-unknown-linux-gnu"


def _environment(machine: str) -> str:
    return f"sys_platform == 'linux' and platform_machine == '{machine}'"


def served_platforms(pylock: str) -> tuple[str, ...]:
    """sysconfig's names (``linux-x86_64``) of the machines a lock's ``environments``
    list; empty when it lists none (a lock made for the one platform it names)."""
    try:
        environments = tomllib.loads(pylock).get("environments", [])
    except tomllib.TOMLDecodeError:
        return ()
    found = []
    for marker in environments if isinstance(environments, list) else []:
        match = _SERVED.search(str(marker))
        if match and "sys_platform == 'linux'" in str(marker):
            found.append(f"linux-{match.group(1)}")
    return tuple(found)


@dataclass
class Merged:
    """The merged lock's text, and what differs from the host's resolution."""

    pylock: str
    # ``numpy 1.26.4 (1.26.3 on aarch64)``, ``psutil 5.9.0 builds from source on aarch64``.
    notes: list[str] = field(default_factory=list)


def merge_machines(resolutions: Mapping[str, str]) -> Merged:
    """One lock of the pylock texts of ``resolutions`` (machine → text, the host's first)."""
    machines = list(resolutions)
    docs = {m: tomllib.loads(text) for m, text in resolutions.items()}
    groups: dict[str, dict[tuple[str, str], list[tuple[str, dict[str, Any]]]]] = {}
    for machine, doc in docs.items():
        for package in doc.get("packages", []):
            key = (str(package.get("version", "")), str(package.get("marker", "")))
            groups.setdefault(_normalize(package["name"]), {}).setdefault(key, []).append(
                (machine, package)
            )
    packages: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in sorted(groups):
        for (_, marker), entries in groups[name].items():
            merged = _union([package for _, package in entries])
            have = [machine for machine, _ in entries]
            if have != machines:
                only = " or ".join(f"platform_machine == '{m}'" for m in have)
                merged["marker"] = f"({marker}) and ({only})" if marker else only
                merged = _marker_after_version(merged)
            packages.append(merged)
        notes.extend(_differences(groups[name], machines))
    host = docs[machines[0]]
    top: dict[str, Any] = {"lock-version": host.get("lock-version", "1.0")}
    top["environments"] = [_environment(m) for m in machines]
    top.update((k, v) for k, v in host.items() if k not in top and k != "packages")
    lines = [f"{_key(k)} = {_value(v)}" for k, v in top.items()]
    for package in packages:
        lines += ["", "[[packages]]"]
        for field_name, value in package.items():
            if field_name == "wheels" and isinstance(value, list) and len(value) > 1:
                lines.append("wheels = [")
                lines.extend(f"    {_value(wheel)}," for wheel in value)
                lines.append("]")
            else:
                lines.append(f"{_key(field_name)} = {_value(value)}")
    return Merged("\n".join(lines) + "\n", notes)


def _union(packages: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One entry of a package's entries at one version: every machine's wheels."""
    merged = dict(packages[0])
    wheels: list[dict[str, Any]] = []
    seen: set[str] = set()
    for package in packages:
        for wheel in package.get("wheels", []):
            where = str(wheel.get("url") or wheel.get("path") or wheel.get("name"))
            if where not in seen:
                seen.add(where)
                wheels.append(wheel)
    if wheels:
        merged["wheels"] = wheels
    return merged


def _marker_after_version(package: dict[str, Any]) -> dict[str, Any]:
    """uv's order of keys: name, version, marker, then the artifacts."""
    head: dict[str, Any] = {k: package[k] for k in ("name", "version", "marker") if k in package}
    return {**head, **{k: v for k, v in package.items() if k not in head}}


def _differences(
    versions: Mapping[tuple[str, str], list[tuple[str, dict[str, Any]]]], machines: Sequence[str]
) -> list[str]:
    host = machines[0]
    here = next((v for (v, _), e in versions.items() if any(m == host for m, _ in e)), None)
    notes = []
    for (version, _), entries in versions.items():
        name = str(entries[0][1]["name"])
        for machine, package in entries:
            if machine == host:
                continue
            compiled = "" if package.get("wheels") else ", built from source there (no wheel)"
            if version != here:
                where = f"{here or 'none'} on {host}"
                notes.append(f"{name} {version} on {machine} ({where}){compiled}")
            elif compiled:
                notes.append(f"{name} {version} builds from source on {machine} (no wheel)")
    return notes


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, str):  # a JSON string is a valid TOML basic string
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"not a TOML value: {value!r}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
