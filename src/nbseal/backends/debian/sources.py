"""Debian specs, constants and the mirror: which suite, which sources, which pin."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from nbseal.backends.base import strip_prefix
from nbseal.backends.debian.lock import (
    DebianSource,
)
from nbseal.directives import DEB_REQUIREMENT_PREFIX
from nbseal.errors import DebianResolutionError, DebianUnavailableError

DEB_PREFIX = DEB_REQUIREMENT_PREFIX
MIRROR_ENV_VAR = "NBSEAL_DEBIAN_MIRROR"
SUITE_ENV_VAR = "NBSEAL_DEBIAN_SUITE"
SNAPSHOT = "snapshot"
SNAPSHOT_URL = "https://snapshot.debian.org/archive/{archive}/{stamp}/"
HOOKS = Path("/usr/share/mmdebstrap/hooks")
APT_SOURCES = Path("/etc/apt")

# Smaller trees: what a kernel never reads. Recorded in the lock (part of the key).
DEFAULT_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
)
APT_OPTIONS = ('APT::Install-Recommends "false"', 'Acquire::Languages "none"')
# The eatmydata hook downloads these at build time; an offline build needs them too.
BUILD_TOOLS = ("eatmydata", "libeatmydata1")
# Resolved trees waiting for their build are dropped after this long.
PREBUILT_MAX_AGE = 24 * 3600

# Debian policy 5.6.1: lower case letters, digits, + - . ; two characters at least.
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")
_DPKG_FILTERS = "/etc/dpkg/dpkg.cfg.d/99nbseal-path-filters"
_INSTALL_HINT = "install it with `apt-get install mmdebstrap uidmap` (Debian, Ubuntu)"


# ---------------------------------------------------------------------------
# specs
# ---------------------------------------------------------------------------
def is_debian_spec(requirements: Sequence[str]) -> bool:
    """Whether a spec is for this backend: every requirement starts with ``deb:``."""
    return bool(requirements) and all(r.startswith(DEB_PREFIX) for r in requirements)


def debian_packages(requirements: Sequence[str]) -> tuple[str, ...]:
    """``deb:NAME`` or ``deb:NAME=VERSION`` → what apt gets; raises for anything else."""
    packages = strip_prefix(requirements, DEB_PREFIX, DebianResolutionError.foreign)
    for requirement, body in zip(requirements, packages, strict=True):
        name, sep, version = body.partition("=")
        if not _PACKAGE.match(name) or (sep and not _VERSION.match(version)):
            raise DebianResolutionError.bad_name(requirement)
    if not packages:
        raise DebianResolutionError.no_packages()
    return packages


# ---------------------------------------------------------------------------
# the mirror
# ---------------------------------------------------------------------------
def host_suite() -> str:
    """``$NBSEAL_DEBIAN_SUITE``, else the host's codename (/etc/os-release)."""
    override = os.environ.get(SUITE_ENV_VAR)
    if override:
        return override
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME" and value.strip('"'):
                return value.strip('"')
    raise DebianUnavailableError.no_codename(SUITE_ENV_VAR, MIRROR_ENV_VAR)


def _deb822(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    entry: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if entry:
                entries.append(entry)
            entry, key = {}, ""
        elif line[0] in " \t" and key:
            entry[key] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            entry[key] = value.strip()
    return entries


def _one_line(line: str) -> tuple[str, str, list[str]] | None:
    """``deb [opts] URI SUITE COMP...`` → (uri, suite, components)."""
    line = line.split("#", 1)[0].strip()
    if not line.startswith("deb "):
        return None
    rest = line[4:].strip()
    if rest.startswith("["):
        rest = rest.partition("]")[2].strip()
    parts = rest.split()
    if len(parts) < 3:
        return None
    return parts[0], parts[1], parts[2:]


def host_sources(suite: str, apt_dir: Path = APT_SOURCES) -> list[DebianSource]:
    """The host's binary sources for ``suite`` and ``suite-*`` (others are skipped).

    Third-party repositories use suites of their own ("nodistro",
    "cloud-sdk-bookworm") and so are left out.
    """
    found: list[tuple[str, str, list[str]]] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in files:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                parsed = _one_line(line)
                if parsed is not None:
                    found.append(parsed)
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for entry in _deb822(path.read_text()):
                if "deb" not in entry.get("types", "").split():
                    continue
                if entry.get("enabled", "yes").lower() == "no":
                    continue
                for uri in entry.get("uris", "").split():
                    for each in entry.get("suites", "").split():
                        found.append((uri, each, entry.get("components", "main").split()))
    sources = []
    for uri, each, components in found:
        if each != suite and not each.startswith(f"{suite}-"):
            continue
        source = DebianSource(uri.rstrip("/"), each, tuple(components))
        if source not in sources:
            sources.append(source)
    return sources


def snapshot_timestamp(pin: str) -> str:
    """A pin (RFC 3339 instant or date) as snapshot.debian.org names it: 20250601T000000Z."""
    text = pin.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DebianResolutionError.bad_pin(pin) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def mirror_sources(suite: str, pin: str) -> tuple[list[DebianSource], bool]:
    """The sources to resolve from, and whether they honour ``pin``.

    ``$NBSEAL_DEBIAN_MIRROR``: unset → the host's apt sources (the pin is
    recorded but not enforced: a regular mirror has only its newest
    packages); ``snapshot`` → snapshot.debian.org at the pin; a URL → that
    mirror for ``suite``.
    """
    override = os.environ.get(MIRROR_ENV_VAR, "").strip()
    if override == SNAPSHOT:
        stamp = snapshot_timestamp(pin)
        main = SNAPSHOT_URL.format(archive="debian", stamp=stamp).rstrip("/")
        security = SNAPSHOT_URL.format(archive="debian-security", stamp=stamp).rstrip("/")
        opts = "check-valid-until=no"
        return [
            DebianSource(main, suite, ("main",), opts),
            DebianSource(main, f"{suite}-updates", ("main",), opts),
            DebianSource(security, f"{suite}-security", ("main",), opts),
        ], True
    if override:
        return [DebianSource(override.rstrip("/"), suite, ("main",))], False
    sources = host_sources(suite)
    if not sources:
        raise DebianUnavailableError.no_mirror(suite, variable=MIRROR_ENV_VAR)
    return sources, False


@functools.lru_cache(maxsize=1)
def host_architecture() -> str:
    done = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DebianUnavailableError.no_dpkg()
    return done.stdout.strip()
