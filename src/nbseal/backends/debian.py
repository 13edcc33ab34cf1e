"""The Debian backend: a root file system built by mmdebstrap from exact .debs.

``#seal env r <- deb:r-base-core deb:r-cran-irkernel`` resolves by building a
root file system with ``mmdebstrap --mode=unshare --variant=apt`` from the
configured mirror (no recommends, eatmydata, no man pages, docs or
translations), keeping the .debs and apt's package lists the build used. The
lock names every installed package exactly: name, version, architecture,
SHA-256 and pool file name of its .deb (see :mod:`.debian_lock`). The .debs go
into the content-addressed ``<cache root>/debs``.

``build(lock)`` makes the same tree again *offline*: the lock's .debs (from
that cache, downloaded and verified only when missing) become a flat
``file://`` repository, and ``mmdebstrap --variant=custom
--include=name=version,...`` installs exactly those. The tree the resolution
built is reused instead when it is still there and holds exactly the lock's
packages, so a first use builds once, not twice.

Trees are large and much alike (every one holds libc, Perl, apt, often R
or Python): when the store publishes one, :meth:`DebianBackend.share_files`
replaces its files that are identical (content, mode, owner, mtime, extended
attributes) to files of the store's other Debian trees by hard links to
those (:func:`.debian_tree.share_identical_files`); a second R environment then costs only
what it adds. ``nbseal env gc`` removes the .debs no stored lock names
(:func:`remove_unused_debs`).

The mirror comes from the host's apt sources (entries for the host's suite
and its ``-updates``/``-security`` suites), or from ``$NBSEAL_DEBIAN_MIRROR``:
a URL, or ``snapshot`` for snapshot.debian.org at the environment's pin.

Root and regular users both build, with ``--mode=unshare``. As root,
mmdebstrap unshares the mount namespace but not the user namespace and writes
the tree in place, with its real owners. A regular user needs newuidmap
(package uidmap), 65536 subordinate uids and gids in /etc/subuid and
/etc/subgid, and a kernel that allows unprivileged user namespaces
(:func:`check_mmdebstrap` checks each and names what is missing). The tree's
owners (root, _apt, ...) are then the user's subordinate ids, which the user
cannot chmod, hard-link or delete; so mmdebstrap writes a tarball instead,
which this process unpacks with tarfile's ``tar`` filter (no device nodes,
no setuid bits, nothing outside the tree): every file then belongs to the
user. mmdebstrap's hooks run as the namespace's root, a subordinate id that
cannot read the user's files: configuration goes in by its ``upload`` hook,
and the offline build's ``file://`` repository lies where any user can read
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import functools
import os
import platform
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nbseal.backends.base import Backend
from nbseal.backends.debian_lock import (
    DebCache,
    DebGcResult,
    DebianLockData,
    DebianPackage,
    DebianSource,
    IndexEntry,
    read_packages_index,
    sha256_file,
)
from nbseal.backends.debian_tree import (
    installed_packages,
    share_identical_files,
    unpack_rootfs,
)
from nbseal.errors import BuildError, ResolutionError
from nbseal.fsutil import remove_tree
from nbseal.lock import Lock
from nbseal.paths import cache_root
from nbseal.plan import EnvironmentSpec, host_platform
from nbseal.progress import Progress

__all__ = [
    "DEB_PREFIX",
    "DEFAULT_DPKG_OPTIONS",
    "MIRROR_ENV_VAR",
    "SUITE_ENV_VAR",
    "DebianBackend",
    "DebianUnavailableError",
    "check_mmdebstrap",
    "debian_packages",
    "host_sources",
    "is_debian_spec",
    "mirror_sources",
    "prune_excluded",
    "remove_unused_debs",
    "snapshot_timestamp",
    "subid_ranges",
    "unprivileged_problem",
]

DEB_PREFIX = "deb:"
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


class DebianUnavailableError(BuildError):
    """mmdebstrap is missing or cannot run here; says why and what to do."""


# ---------------------------------------------------------------------------
# specs
# ---------------------------------------------------------------------------
def is_debian_spec(requirements: Sequence[str]) -> bool:
    """Whether a spec is for this backend: every requirement starts with ``deb:``."""
    return bool(requirements) and all(r.startswith(DEB_PREFIX) for r in requirements)


def debian_packages(requirements: Sequence[str]) -> tuple[str, ...]:
    """``deb:NAME`` or ``deb:NAME=VERSION`` → what apt gets; raises for anything else."""
    packages = []
    for requirement in requirements:
        if not requirement.startswith(DEB_PREFIX):
            raise ResolutionError(
                f"{requirement!r} is not a Debian package requirement",
                stderr="",
                hint="a Debian environment takes only deb:NAME (or deb:NAME=VERSION); "
                "Python packages go into an environment of their own",
            )
        body = requirement[len(DEB_PREFIX) :]
        name, sep, version = body.partition("=")
        if not _PACKAGE.match(name) or (sep and not _VERSION.match(version)):
            raise ResolutionError(
                f"{requirement!r} is not a Debian package name",
                stderr="",
                hint="use deb:NAME with a name as `apt-cache search` shows it, "
                "e.g. deb:r-base-core",
            )
        packages.append(body)
    if not packages:
        raise ResolutionError("a Debian environment names no package", stderr="")
    return tuple(packages)


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
    raise DebianUnavailableError(
        "cannot tell which Debian release to build: the host names no codename",
        hint=f"set {SUITE_ENV_VAR} (e.g. bookworm) and {MIRROR_ENV_VAR} (a Debian mirror URL)",
    )


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
        raise ResolutionError(f"the pin {pin!r} is not a date or instant", stderr="") from exc
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
        raise DebianUnavailableError(
            f"the host's apt sources name no mirror for Debian {suite}",
            hint=f"set {MIRROR_ENV_VAR} to a Debian mirror URL (or to `snapshot`)",
        )
    return sources, False


@functools.lru_cache(maxsize=1)
def host_architecture() -> str:
    done = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise DebianUnavailableError("dpkg is not installed: this is not a Debian-based host")
    return done.stdout.strip()


# ---------------------------------------------------------------------------
# mmdebstrap
# ---------------------------------------------------------------------------
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))
# A Debian tree has files of ids up to 65534 (nobody); mmdebstrap maps one
# range of subordinate ids to the namespace's ids 0, 1, 2, ...
SUBID_NEEDED = 65536
USERNS_SYSCTLS = (
    ("/proc/sys/kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"),
    ("/proc/sys/user/max_user_namespaces", "0", "user.max_user_namespaces=15000"),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "kernel.apparmor_restrict_unprivileged_userns=0",
    ),
)


@dataclass(frozen=True)
class SubidRange:
    """One line of /etc/subuid or /etc/subgid that names the user."""

    by: str  # the user's name or uid, as the line names it
    start: int
    count: int


def subid_ranges(text: str, user: str, uid: int) -> list[SubidRange]:
    """The ranges ``text`` (/etc/subuid or /etc/subgid) grants ``user`` (by name or uid)."""
    ranges = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        with contextlib.suppress(ValueError):
            ranges.append(SubidRange(fields[0], int(fields[1]), int(fields[2])))
    return ranges


def unprivileged_problem(
    user: str, uid: int, files: Sequence[Path] = SUBID_FILES
) -> DebianUnavailableError | None:
    """What in /etc/subuid and /etc/subgid keeps ``user`` from running mmdebstrap, if anything.

    A file may name the user or the uid; each needs a range of at least
    65536 ids, as ``useradd`` grants by default.
    """
    missing, short, dropped = [], [], []
    first = 100_000  # above every range granted: a free one to suggest
    for path in files:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            return DebianUnavailableError(
                f"cannot build Debian environments as {user}: {path} is not readable",
                context=str(exc),
                hint=f"ask an administrator to make {path} readable (mode 0644)",
            )
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                first = max(first, int(fields[1]) + int(fields[2]))
        ranges = subid_ranges(text, user, uid)
        if not ranges:
            missing.append(str(path))
        elif max(r.count for r in ranges) < SUBID_NEEDED:
            short.append(str(path))
            option = "--del-subuids" if path.name == "subuid" else "--del-subgids"
            dropped += [f"{option} {r.start}-{r.start + r.count - 1}" for r in ranges]
    ids = f"{first}-{first + SUBID_NEEDED - 1}"
    fix = (
        f"ask an administrator to run `usermod --add-subuids {ids} --add-subgids {ids} "
        f"{user}` (or another {SUBID_NEEDED} ids no other user has), or run nbseal as root"
    )
    if missing:
        verb = "grants" if len(missing) == 1 else "grant"
        return DebianUnavailableError(
            f"cannot build Debian environments as {user}: {' and '.join(missing)} "
            f"{verb} {user} no subordinate ids",
            context="mmdebstrap --mode=unshare maps the users of a Debian tree (root, _apt, "
            f"nobody, ...) to subordinate ids of {user}",
            hint=fix,
        )
    if short:
        verb = "grants" if len(short) == 1 else "grant"
        return DebianUnavailableError(
            f"cannot build Debian environments as {user}: {' and '.join(short)} "
            f"{verb} {user} fewer than {SUBID_NEEDED} subordinate ids",
            context="a Debian tree has files of ids up to 65534 (nobody)",
            hint=f"ask an administrator to run `usermod {' '.join(dropped)} --add-subuids "
            f"{ids} --add-subgids {ids} {user}` (mmdebstrap uses one range), "
            "or run nbseal as root",
        )
    return None


def _named_by_uid_only(user: str, uid: int, files: Sequence[Path] = SUBID_FILES) -> list[str]:
    """Those of ``files`` that grant ``user`` ids under the uid only (mmdebstrap wants the name)."""
    found = []
    for path in files:
        with contextlib.suppress(OSError):
            ranges = subid_ranges(path.read_text(), user, uid)
            if ranges and all(r.by != user for r in ranges):
                found.append(str(path))
    return found


def _userns_hint() -> str:
    for path, blocked, setting in USERNS_SYSCTLS:
        with contextlib.suppress(OSError):
            if Path(path).read_text().strip() == blocked:
                return (
                    f"this kernel disallows unprivileged user namespaces ({path} is {blocked}): "
                    f"ask an administrator to run `sysctl -w {setting}`, or run nbseal as root"
                )
    return (
        "unprivileged user namespaces must be allowed (`sysctl -w "
        "kernel.unprivileged_userns_clone=1` on older Debian, `sysctl -w "
        "kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04; in a container, "
        "a seccomp profile that allows unshare), or run nbseal as root"
    )


@functools.lru_cache(maxsize=1)
def check_mmdebstrap() -> str:
    """The mmdebstrap to use; raises :class:`DebianUnavailableError` saying why not.

    As a regular user, mmdebstrap needs newuidmap/newgidmap (package uidmap),
    subordinate id ranges of the user in /etc/subuid and /etc/subgid, and a
    kernel that lets users create user namespaces; this checks each, then
    runs ``mmdebstrap --unshare-helper /bin/true``, which creates the same
    namespaces a build does.
    """
    found = shutil.which("mmdebstrap")
    if found is None:
        raise DebianUnavailableError(
            "cannot build Debian environments: mmdebstrap is not installed",
            hint=_INSTALL_HINT,
        )
    for tool in ("dpkg", "dpkg-query", "dpkg-scanpackages"):
        if shutil.which(tool) is None:
            raise DebianUnavailableError(
                f"cannot build Debian environments: {tool} is not installed",
                hint="install dpkg-dev (`apt-get install dpkg-dev`)",
            )
    unprivileged = os.geteuid() != 0
    if unprivileged:
        user = _user_name()
        if not hasattr(tarfile, "tar_filter"):
            raise DebianUnavailableError(
                f"cannot build Debian environments as {user}: this Python "
                f"({platform.python_version()}) has no tarfile extraction filters",
                context="as a regular user, the tree comes as a tarball that nbseal unpacks "
                "with tarfile's 'tar' filter (PEP 706)",
                hint="use Python 3.10.12, 3.11.4, 3.12 or newer, or run nbseal as root",
            )
        for tool in ("newuidmap", "newgidmap"):
            if shutil.which(tool) is None:
                raise DebianUnavailableError(
                    f"cannot build Debian environments as {user}: {tool} is not installed",
                    context="mmdebstrap --mode=unshare maps a Debian tree's ids with it",
                    hint="install uidmap (`apt-get install uidmap`), or run nbseal as root",
                )
        problem = unprivileged_problem(user, os.getuid())
        if problem is not None:
            raise problem
    # The namespaces a build uses (as root: mount, pid, uts, ipc; as a user: also user).
    done = subprocess.run(
        [found, "--unshare-helper", "/bin/true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        if unprivileged:
            user = _user_name()
            by_uid = _named_by_uid_only(user, os.getuid())
            if by_uid:
                raise DebianUnavailableError(
                    f"cannot build Debian environments as {user}: {' and '.join(by_uid)} "
                    f"{'names' if len(by_uid) == 1 else 'name'} uid {os.getuid()}, but "
                    "mmdebstrap looks the entries up by user name",
                    context=done.stderr.strip(),
                    hint=f"ask an administrator to write {user} instead of {os.getuid()} "
                    f"in {' and '.join(by_uid)}",
                )
            raise DebianUnavailableError(
                f"mmdebstrap cannot create a user namespace as {user} here",
                context=done.stderr.strip(),
                hint=_userns_hint(),
            )
        raise DebianUnavailableError(
            "mmdebstrap cannot create the namespaces it needs here",
            context=done.stderr.strip(),
            hint="mmdebstrap --mode=unshare needs to unshare mount namespaces "
            "(CAP_SYS_ADMIN as root; in a container, a seccomp profile that allows unshare)",
        )
    return found


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


@dataclass
class _Run:
    returncode: int
    output: str


async def _run_mmdebstrap(argv: Sequence[str], progress: Progress, log_path: Path) -> _Run:
    """Run mmdebstrap, its ``I:`` lines as progress steps; keep everything in ``log_path``."""
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    env.pop("TMPDIR", None)  # the unshared user must reach it; /tmp always works
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write("$ " + shlex.join(argv) + "\n")
            while raw := await process.stdout.readline():
                line = raw.decode(errors="replace").rstrip()
                log.write(line + "\n")
                lines.append(line)
                # Hook invocations are long shell lines; the stages make better steps.
                if line.startswith("I: ") and not line.startswith("I: running "):
                    progress.step(line[3:])
        code = await process.wait()
    except BaseException:
        # Cancelled (interrupt) or failed: mmdebstrap and its children go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        await process.wait()
        raise
    return _Run(code, "\n".join(lines))


_UNKNOWN = (
    re.compile(r"E: Unable to locate package (\S+)"),
    re.compile(r"E: Package '([^']+)' has no installation candidate"),
    re.compile(r"E: Version '[^']+' for '([^']+)' was not found"),
)


def _failure(run: _Run, what: str, suite: str, log_path: Path) -> Exception:
    tail = "\n".join(line for line in run.output.splitlines() if line.strip())[-3000:]
    for pattern in _UNKNOWN:
        match = pattern.search(run.output)
        if match:
            return ResolutionError(
                f"Debian {suite} has no package {match.group(1)!r}",
                stderr=tail,
                hint="check the name with `apt-cache search NAME`, or set "
                f"{MIRROR_ENV_VAR} to a mirror that has it",
            )
    if "Could not resolve" in run.output or "Failed to fetch" in run.output:
        return BuildError(
            f"{what}: the Debian mirror could not be reached",
            context=tail,
            hint=f"check the network, or set {MIRROR_ENV_VAR} to a reachable mirror",
        )
    return BuildError(
        f"{what}: mmdebstrap failed (exit code {run.returncode})",
        context=tail,
        hint=f"the whole output is in {log_path}",
    )


def _dpkg_options(options: Sequence[str], scratch: Path) -> list[str]:
    """dpkg's path filters, as a config file put in place before anything is installed.

    Not ``--dpkgopt``: with path filters there, mmdebstrap pipes every .deb it
    extracts itself through mmtarfilter (Perl), which took 78 s of a 108 s
    offline build here; dpkg applies the same filters natively when it
    installs. What the extraction put down unfiltered is removed afterwards
    (:func:`prune_excluded`).

    The file goes in by mmdebstrap's ``upload`` hook, which reads it as the
    user who runs nbseal: unprivileged, the hooks' root is a subordinate uid
    that cannot read the user's private scratch directory.
    """
    if not options:
        return []
    config = scratch / "dpkg-path-filters.cfg"
    config.write_text("".join(f"{option}\n" for option in options))
    os.chmod(config, 0o644)
    return [
        '--setup-hook=mkdir -p "$1/etc/dpkg/dpkg.cfg.d"',
        f"--setup-hook=upload {shlex.quote(str(config))} {_DPKG_FILTERS}",
        f'--setup-hook=chmod 0644 "$1{_DPKG_FILTERS}"',
    ]


def _path_filters(options: Sequence[str]) -> list[tuple[bool, str]]:
    filters = []
    for option in options:
        key, _, pattern = option.partition("=")
        if key in ("path-exclude", "path-include"):
            filters.append((key == "path-exclude", pattern))
    return filters


def _excluded(path: str, filters: Sequence[tuple[bool, str]]) -> bool:
    # dpkg: the last filter that matches decides; fnmatch(3) without
    # FNM_PATHNAME, so * also matches "/", as fnmatchcase does.
    verdict = False
    for exclude, pattern in filters:
        if fnmatch.fnmatchcase(path, pattern):
            verdict = exclude
    return verdict


def prune_excluded(root: Path, options: Sequence[str]) -> int:
    """Remove what dpkg's path filters exclude but mmdebstrap's extraction put down.

    Returns the number of entries removed. Directories go only when they
    end up empty and are excluded themselves.
    """
    filters = _path_filters(options)
    if not filters:
        return 0
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        inside = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        for name in filenames:
            if _excluded(f"{inside}/{name}", filters):
                os.unlink(os.path.join(dirpath, name))
                removed += 1
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                if _excluded(f"{inside}/{name}", filters):
                    os.unlink(full)
                    removed += 1
            elif _excluded(f"{inside}/{name}", filters) and not os.listdir(full):
                os.rmdir(full)
                removed += 1
    return removed


def _normalise_hook(sources: Sequence[DebianSource], scratch: Path) -> list[str]:
    """Hooks that make the tree independent of the host and of the build's mirror.

    The tree's sources.list names the lock's sources (an offline build would
    leave its file:// repository there), and /etc/hosts, /etc/hostname and
    /etc/resolv.conf are fixed text instead of the host's copies.
    """
    sources_list = scratch / "sources.list"
    sources_list.write_text("".join(s.line() + "\n" for s in sources))
    os.chmod(sources_list, 0o644)
    script = (
        "printf '127.0.0.1 localhost\\n::1 localhost ip6-localhost\\n' > \"$1/etc/hosts\" && "
        "printf 'nbseal\\n' > \"$1/etc/hostname\" && "
        ': > "$1/etc/resolv.conf" && '
        'chmod 0644 "$1/etc/hosts" "$1/etc/hostname" "$1/etc/resolv.conf"'
    )
    return [
        f"--customize-hook=upload {shlex.quote(str(sources_list))} /etc/apt/sources.list",
        f"--customize-hook={script}",
        # upload writes with the hook's umask; apt and the kernel read it as anyone.
        '--customize-hook=chmod 0644 "$1/etc/apt/sources.list"',
    ]


def _others_can_reach(path: Path) -> bool:
    """Whether every user may traverse the directories down to ``path`` (o+x all along)."""
    try:
        resolved = path.resolve()
        return all(os.stat(p).st_mode & stat.S_IXOTH for p in [resolved, *resolved.parents])
    except OSError:
        return False


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


def _kernelspecs(root: Path) -> list[Path]:
    found: list[Path] = []
    for base in ("usr/local/share/jupyter/kernels", "usr/share/jupyter/kernels"):
        found += sorted((root / base).glob("*/kernel.json"))
    return found


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


def remove_unused_debs(locks: Iterable[Lock], debs: DebCache | None = None) -> DebGcResult:
    """Remove the stored .debs that none of ``locks`` (the store's) names; see DebCache.gc.

    A Debian lock that cannot be read (a newer format) could name any .deb,
    so then nothing is removed.
    """
    keep: set[str] = set()
    for lock in locks:
        if lock.backend != DebianBackend.name:
            continue
        try:
            data = DebianLockData.loads(lock.pylock)
        except BuildError:
            return DebGcResult((), 0, 0)
        keep.update(p.sha256 for p in data.all_debs())
    return (debs if debs is not None else DebCache()).gc(keep)


# ---------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------
class DebianBackend(Backend):
    """Debian packages into a root file system; see the module's docstring."""

    name = "deb"

    def __init__(
        self,
        *,
        debs: DebCache | None = None,
        work_root: Path | None = None,
        dpkg_options: Sequence[str] = DEFAULT_DPKG_OPTIONS,
        eatmydata: bool = True,
        require_kernel: bool = True,
        tarball: bool | None = None,
    ) -> None:
        self.debs = debs if debs is not None else DebCache()
        # Resolved trees and build scratch live beside the store, on its file
        # system, so a resolved tree moves into the store by rename.
        self.work_root = work_root if work_root is not None else cache_root() / "debian"
        self.dpkg_options = tuple(dpkg_options)
        self.eatmydata = eatmydata
        self.require_kernel = require_kernel
        # Unprivileged, mmdebstrap's directory output would belong to sub-uids;
        # a tarball unpacked by this process belongs to the user. As root the
        # directory is written in place (see the module's docstring).
        self.tarball = os.geteuid() != 0 if tarball is None else tarball

    @property
    def prebuilt_root(self) -> Path:
        return self.work_root / "resolved"

    @staticmethod
    def _hook_dirs(*, file_mirror: bool, eatmydata: bool) -> list[str]:
        dirs = []
        if file_mirror:
            dirs.append(HOOKS / "file-mirror-automount")
        if eatmydata:
            dirs.append(HOOKS / "eatmydata")
        return [f"--hook-dir={d}" for d in dirs]

    # -- resolve ------------------------------------------------------------
    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        mmdebstrap = await asyncio.to_thread(check_mmdebstrap)
        packages = debian_packages(spec.requirements)
        suite = host_suite()
        arch = host_architecture()
        sources, enforced = mirror_sources(suite, spec.pin)
        progress.step(
            f"resolving {' '.join(packages)} from Debian {suite} ({sources[0].uri})"
            + (f" as of {spec.pin}" if enforced else "")
        )
        workdir.mkdir(parents=True, exist_ok=True)
        kept_debs, kept_lists = workdir / "debs", workdir / "lists"
        for folder in (kept_debs, kept_lists):
            folder.mkdir(parents=True, exist_ok=True)
        self.prebuilt_root.mkdir(parents=True, exist_ok=True)
        self._prune_prebuilt()
        tree = self.prebuilt_root / f".resolve-{uuid.uuid4().hex[:12]}"
        # Unprivileged, mmdebstrap writes a tarball, unpacked into ``tree`` as the user.
        output = tree.with_name(f"{tree.name}.tar") if self.tarball else tree
        tools_hook = (
            'chroot "$1" sh -c "cd /var/cache/apt/archives && '
            f'apt-get download -q {" ".join(BUILD_TOOLS)} >/dev/null"'
        )
        argv = [
            mmdebstrap,
            "--mode=unshare",
            "--variant=apt",
            f"--architectures={arch}",
            f"--include={','.join(packages)}",
            *(f"--aptopt={o}" for o in APT_OPTIONS),
            *(['--aptopt=Acquire::Check-Valid-Until "false"'] if enforced else []),
            *self._hook_dirs(file_mirror=False, eatmydata=self.eatmydata),
            *_dpkg_options(self.dpkg_options, workdir),
            # Keep every .deb (also the essential ones) for the lock and the cache.
            "--skip=essential/unlink",
            *([f"--customize-hook={tools_hook}"] if self.eatmydata else []),
            f"--customize-hook=sync-out /var/cache/apt/archives {kept_debs}",
            f"--customize-hook=sync-out /var/lib/apt/lists {kept_lists}",
            *_normalise_hook(sources, workdir),
            suite,
            str(output),
            *(s.line() for s in sources),
        ]
        log_path = self.work_root / "logs" / f"{tree.name.lstrip('.')}.log"
        started = time.monotonic()
        try:
            run = await _run_mmdebstrap(argv, progress, log_path)
            if run.returncode != 0:
                raise _failure(run, f"resolving {' '.join(packages)}", suite, log_path)
            progress.step(f"root file system built in {time.monotonic() - started:.1f} s")
            if output != tree:
                await self._unpack(output, tree, progress)
            await asyncio.to_thread(prune_excluded, tree, self.dpkg_options)
            data = await asyncio.to_thread(
                self._lock_data, tree, kept_debs, kept_lists, sources, suite, arch, packages
            )
            data = dataclasses.replace(data, pin_enforced=enforced)
            if self.require_kernel and not _kernelspecs(tree):
                raise BuildError(
                    f"the Debian environment {spec.name!r} holds no Jupyter kernel",
                    context=f"packages: {' '.join(packages)}",
                    hint="add a kernel package, e.g. deb:r-cran-irkernel (R), "
                    "deb:python3-ipykernel (Python), deb:python3-octave-kernel (Octave)",
                )
        except BaseException:
            await asyncio.to_thread(remove_tree, tree)
            raise
        finally:
            if output != tree:
                output.unlink(missing_ok=True)
        lock = Lock(
            backend=self.name,
            requirements=spec.requirements,
            # A root file system brings its own interpreters: no host Python in the key.
            python="",
            platform=host_platform(),
            exclude_newer=spec.pin,
            pylock=data.dumps(),
        )
        final = self.prebuilt_root / lock.key
        try:
            os.rename(tree, final)
        except OSError:  # an identical resolution is waiting already
            await asyncio.to_thread(remove_tree, tree)
        progress.step(f"locked {len(data.packages)} Debian packages")
        return lock

    def _lock_data(
        self,
        tree: Path,
        kept_debs: Path,
        kept_lists: Path,
        sources: Sequence[DebianSource],
        suite: str,
        arch: str,
        include: Sequence[str],
    ) -> DebianLockData:
        installed = installed_packages(tree)
        names = {name for name, _, _ in installed} | set(BUILD_TOOLS)
        index = _index(kept_lists, sources, names)
        by_hash = {sha256_file(deb): deb for deb in kept_debs.glob("*.deb")}
        locked: list[DebianPackage] = []
        unknown = []
        for key in sorted(installed):
            if key not in index:
                unknown.append("=".join(key[:2]))
                continue
            entry, number = index[key]
            locked.append(_locked(entry, number))
        if unknown:
            raise BuildError(
                "installed packages are missing from the mirror's index",
                context=", ".join(unknown),
                hint="the mirror changed during the build; resolve again",
            )
        tools = []
        if self.eatmydata:
            for entry, number in index.values():
                if entry.name in BUILD_TOOLS and entry.sha256 in by_hash:
                    tools.append(_locked(entry, number))
        for package in [*locked, *tools]:
            deb = by_hash.get(package.sha256)
            if deb is not None:
                self.debs.add_file(deb, package.sha256)
        uris = _uris_for(DebianLockData(suite, arch, tuple(include), tuple(sources), tuple(locked)))
        for package in self.debs.missing([*locked, *tools]):
            self.debs.fetch(package, uris.get(package.source, []))
        self.debs.mark_used([*locked, *tools])
        return DebianLockData(
            suite=suite,
            architecture=arch,
            include=tuple(include),
            sources=tuple(sources),
            packages=tuple(locked),
            build_tools=tuple(tools),
            dpkg_options=self.dpkg_options,
            resolved_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    # -- the store ----------------------------------------------------------
    def share_files(self, tree: Path, published: Sequence[Path]) -> str:
        """Hard-link ``tree``'s files to identical ones of the store's other Debian trees.

        Called by the store (see :class:`nbseal.store.SharesFiles`) with
        ``tree`` read-only, under the store's share lock.
        """
        return share_identical_files(tree, published).summary()

    async def _unpack(self, archive: Path, dest: Path, progress: Progress) -> None:
        started = time.monotonic()
        size = archive.stat().st_size
        await asyncio.to_thread(unpack_rootfs, archive, dest)
        progress.step(
            f"unpacked the {size / 2**20:.0f} MiB tarball in {time.monotonic() - started:.1f} s"
        )

    def _prune_prebuilt(self) -> None:
        cutoff = time.time() - PREBUILT_MAX_AGE
        for path in self.prebuilt_root.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    remove_tree(path)

    # -- build --------------------------------------------------------------
    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        data = DebianLockData.loads(lock.pylock)
        # Keeps them from `nbseal env gc` until this lock is in the store.
        await asyncio.to_thread(self.debs.mark_used, data.all_debs())
        wanted = data.installed_set()
        prebuilt = self.prebuilt_root / lock.key
        if prebuilt.is_dir():
            matches = await asyncio.to_thread(installed_packages, prebuilt)
            if matches == wanted:
                try:
                    os.rename(prebuilt, dest)
                    progress.step("using the root file system the resolution built")
                    return
                except OSError:
                    pass  # another file system: build it again
        await self.build_offline(data, dest, progress)

    async def build_offline(self, data: DebianLockData, dest: Path, progress: Progress) -> None:
        """Build ``data``'s tree from stored .debs only (missing ones are fetched first)."""
        mmdebstrap = await asyncio.to_thread(check_mmdebstrap)
        await self.ensure_debs(data, progress)
        everything = list(data.all_debs())
        self.work_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=self.work_root))
        repo = scratch / "repo"
        try:
            repo = await asyncio.to_thread(self._repo_dir, scratch)
            progress.step(f"indexing {len(everything)} stored .debs")
            await asyncio.to_thread(self._flat_repo, repo, everything)
            output = scratch / "rootfs.tar" if self.tarball else dest
            argv = [
                mmdebstrap,
                "--mode=unshare",
                "--variant=custom",
                f"--architectures={data.architecture}",
                f"--include={','.join(p.pin for p in data.packages)}",
                *(f"--aptopt={o}" for o in APT_OPTIONS),
                # eatmydata only when the lock names its .debs (the hook installs them).
                *self._hook_dirs(
                    file_mirror=True,
                    eatmydata={t.name for t in data.build_tools} >= set(BUILD_TOOLS),
                ),
                *_dpkg_options(data.dpkg_options, scratch),
                *_normalise_hook(data.sources, scratch),
                data.suite,
                str(output),
                f"deb [trusted=yes] file://{repo} ./",
            ]
            log_path = self.work_root / "logs" / f"{scratch.name}.log"
            run = await _run_mmdebstrap(argv, progress, log_path)
            if run.returncode != 0:
                raise _failure(run, "building from the lock", data.suite, log_path)
            if output != dest:
                await self._unpack(output, dest, progress)
            await asyncio.to_thread(prune_excluded, dest, data.dpkg_options)
        finally:
            await asyncio.to_thread(remove_tree, scratch)
            await asyncio.to_thread(remove_tree, repo)
        got = await asyncio.to_thread(installed_packages, dest)
        if got != data.installed_set():
            extra = sorted("=".join(p[:2]) for p in got - data.installed_set())
            lacking = sorted("=".join(p[:2]) for p in data.installed_set() - got)
            raise BuildError(
                "the rebuilt root file system does not hold exactly the locked packages",
                context=f"not in the lock: {', '.join(extra) or '-'}\n"
                f"missing: {', '.join(lacking) or '-'}",
            )
        progress.step(f"{len(got)} packages installed from stored .debs")

    async def ensure_debs(self, data: DebianLockData, progress: Progress) -> None:
        """Put every .deb of ``data`` into the local store, downloading what is missing."""
        everything = list(data.all_debs())
        missing = self.debs.missing(everything)
        if missing:
            progress.step(f"downloading {len(missing)} .debs missing from the local store")
            await self.debs.fetch_all(everything, _uris_for(data))

    @staticmethod
    def _repo_dir(scratch: Path) -> Path:
        """Where the build's ``file://`` repository goes: where mmdebstrap's apt can read it.

        apt reads it from the host's file system as the build's root: real
        root, or (unprivileged) a subordinate uid, which is "other" to every
        file of the user. Then the repository must be world-readable along
        its whole path; a cache in a private home is not, so the repository
        goes to /tmp instead (where mmdebstrap builds the tree anyway).
        """
        if os.geteuid() == 0 or _others_can_reach(scratch.parent):
            os.chmod(scratch, 0o755)
            repo = scratch / "repo"
            repo.mkdir()
        else:
            repo = Path(tempfile.mkdtemp(prefix="nbseal-repo-", dir="/tmp"))
        os.chmod(repo, 0o755)
        return repo

    def _flat_repo(self, repo: Path, packages: Sequence[DebianPackage]) -> None:
        """A ``file://`` repository: links to the cached .debs (mode 0444) and their index."""
        for package in packages:
            link = repo / f"{package.sha256}.deb"
            try:
                os.link(self.debs.path(package.sha256), link)
            except OSError:  # another file system; shutil.copy keeps mode 0444
                shutil.copy(self.debs.path(package.sha256), link)
        with open(repo / "Packages", "wb") as out:
            done = subprocess.run(
                ["dpkg-scanpackages", "-m", ".", "/dev/null"],
                cwd=repo,
                stdout=out,
                stderr=subprocess.PIPE,
                check=False,
            )
        os.chmod(repo / "Packages", 0o644)
        if done.returncode != 0:
            raise BuildError(
                "cannot index the stored .debs",
                context=done.stderr.decode(errors="replace").strip()[-2000:],
            )
