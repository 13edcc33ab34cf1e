"""Metadata that pip read and uv does not: repaired, so old releases resolve.

Wheels of many releases before 2019 declare requirements that are not PEP
440: pandas 0.23 says ``pytz (>=2011k)``. pip of their time read ``2011k``
as a legacy version, older than every release, so the bound held for any
pytz; uv rejects the whole release ("has invalid metadata") and, resolving,
skips it for an older one, down to an sdist that no longer builds (pandas
0.13.1). On CPython 3.11 such releases fall forward anyway; on the CPython of
their time (``python=auto``) they are what the notebook needs. Here such a
release gets its metadata as pip read it, a clause that does not parse
dropped, through uv's ``dependency-metadata`` setting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from email.parser import HeaderParser

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from nbseal.backends.pypi_index import ProjectIndex, Target

__all__ = ["Repaired", "dependency_metadata_toml", "invalid_metadata", "repair", "repaired_line"]

# {"name": ..., "version": ..., "requires-dist": [...], "requires-python"?: ...}
Repaired = dict[str, object]

_INVALID = (
    re.compile(r"([A-Za-z0-9._-]+)==(\S+) has invalid metadata"),
    re.compile(r"Metadata for `([A-Za-z0-9._-]+)` \(v(\S+)\) could not be parsed"),
)
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def invalid_metadata(stderr: str) -> tuple[str, str] | None:
    """The release (normalised name, version) uv said has metadata it cannot parse."""
    for pattern in _INVALID:
        match = pattern.search(stderr)
        if match:
            return canonicalize_name(match.group(1)), match.group(2)
    return None


def repaired_line(line: str) -> str | None:
    """``line`` as pip of its time read it, when it does not parse now (None: it does).

    ``pytz (>=2011k)`` gives ``pytz``: a legacy version was older than any
    release, so the bound held for all; a marker is kept when it parses.
    """
    try:
        Requirement(line)
    except InvalidRequirement:
        pass
    else:
        return None
    body, _, marker = line.partition(";")
    match = _NAME.match(body)
    if match is None:
        return ""  # nothing to keep
    text = match.group(1) + (match.group(2) or "")
    rest = body[match.end() :].strip().strip("()").strip()
    try:
        if rest and SpecifierSet(rest):
            text += rest
    except InvalidSpecifier:
        pass
    if marker.strip():
        try:
            Marker(marker.strip())
            text += f"; {marker.strip()}"
        except InvalidMarker:
            pass
    return text


def repair(index: ProjectIndex, name: str, version: Version, target: Target) -> Repaired | None:
    """The metadata of ``name`` ``version`` with what does not parse repaired; None
    when all of it parses (or no wheel for ``target`` has it)."""
    text = index.metadata(name, version, target)
    if not text:
        return None
    headers = HeaderParser().parsestr(text)
    lines = [str(x) for x in headers.get_all("Requires-Dist") or []]
    fixed = [repaired_line(line) for line in lines]
    python = str(headers.get("Requires-Python") or "").strip()
    python_ok = True
    if python:
        try:
            SpecifierSet(python)
        except InvalidSpecifier:
            python_ok = False
    if all(f is None for f in fixed) and python_ok:
        return None
    requires = [line if f is None else f for line, f in zip(lines, fixed, strict=True)]
    found: Repaired = {
        "name": canonicalize_name(name),
        "version": str(version),
        "requires-dist": [r for r in requires if r],
    }
    if python and python_ok:
        found["requires-python"] = python
    return found


def dependency_metadata_toml(entries: Sequence[Mapping[str, object]]) -> str:
    """uv's configuration holding ``entries`` as its ``dependency-metadata``."""
    out = []
    for entry in entries:
        out.append("[[dependency-metadata]]")
        for key, value in entry.items():
            out.append(f"{key} = {json.dumps(value)}")
        out.append("")
    return "\n".join(out)
