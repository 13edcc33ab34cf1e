"""A PyPI lock that serves Linux x86_64 and aarch64, made from the host's revived one.

The host's resolution (:mod:`nbseal.backends.revive`) is made again for the
other machine with uv's ``--python-platform``, the same pin, per-package
cutoffs and constraints, and the two are merged into one lock
(:mod:`nbseal.pylock_platforms`). A per-package cutoff is set just after the
upload of the wheel the *host* installs; the other machine's wheel of that
release is often uploaded minutes or days later, and the cutoff hides it, so
the other machine would take an older release, or compile this one. Such
packages are aligned: the cutoff moves to just after the upload of that
release's first wheel for the other machine, and the release is held to the
host's (``NAME==VERSION`` as a constraint). A release with no wheel there at
all falls forward on that machine alone, to its first release with one (as
:mod:`~nbseal.backends.revive` does on the host). What still differs keeps a
version of its own behind a marker, and is said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from nbseal._toml import tomllib
from nbseal.backends.pypi_index import ProjectIndex, Target, first_installable, instant
from nbseal.backends.revive import Revival
from nbseal.errors import ResolutionError
from nbseal.plan import host_platform
from nbseal.progress import Progress
from nbseal.pylock_platforms import LINUX_MACHINES, machine_of, merge_machines

__all__ = ["CompileFor", "for_linux_machines", "linux_target"]

# Resolves the spec for one machine (None: this one) with cutoffs and constraints.
CompileFor = Callable[[Mapping[str, str], Sequence[str], str | None], Awaitable[str]]
# uv's ``aarch64-unknown-linux-gnu`` and ``x86_64-unknown-linux-gnu``: manylinux_2_28.
_GLIBC_MINOR = 28
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def linux_target(machine: str, python_version: str) -> Target:
    """CPython ``python_version`` on glibc Linux ``machine``, as uv's target names it."""
    major, minor = (int(p) for p in python_version.split(".")[:2])
    platforms = []
    for glibc in range(_GLIBC_MINOR, 4, -1):
        platforms.append(f"manylinux_2_{glibc}_{machine}")
        if glibc in _LEGACY:
            platforms.append(f"{_LEGACY[glibc]}_{machine}")
    platforms.append(f"linux_{machine}")
    tags: list[Tag] = [*cpython_tags((major, minor), platforms=platforms)]
    tags += compatible_tags((major, minor), f"cp{major}{minor}", platforms)
    return Target(frozenset(tags), python_version, f"CPython {major}.{minor} on {machine}")


async def for_linux_machines(
    revival: Revival,
    compile_for: CompileFor,
    progress: Progress,
    *,
    pin: str,
    python_version: str,
    index: ProjectIndex | None = None,
) -> str:
    """The revived lock, made to serve the other Linux machine too (x86_64, aarch64).

    A machine that does not resolve is left out of the lock, and said so; a
    host that is neither gets the host's lock as it is.
    """
    here = machine_of(host_platform())
    if here is None:
        return revival.pylock
    resolutions = {here: revival.pylock}
    for machine in (m for m in LINUX_MACHINES if m != here):
        progress.step(f"resolving for Linux {machine} too")
        try:
            resolutions[machine] = await _resolve_for(
                machine,
                revival,
                compile_for,
                pin=pin,
                target=linux_target(machine, python_version),
                index=index or ProjectIndex(),
            )
        except ResolutionError as exc:
            progress.step(f"not locked for Linux {machine}: {exc.cause or exc.message}")
    merged = merge_machines(resolutions)
    for note in merged.notes:
        progress.step(note)
    return merged.pylock


async def _resolve_for(
    machine: str,
    revival: Revival,
    compile_for: CompileFor,
    *,
    pin: str,
    target: Target,
    index: ProjectIndex,
) -> str:
    cutoffs, constraints = dict(revival.cutoffs), list(revival.constraints)
    pylock = await compile_for(cutoffs, constraints, machine)
    moved, held = await asyncio.to_thread(
        _alignment, _versions(revival.pylock), _versions(pylock), cutoffs, pin, target, index
    )
    if not moved:
        return pylock
    try:
        return await compile_for({**cutoffs, **moved}, [*constraints, *held], machine)
    except ResolutionError:  # the releases cannot be held together there: as resolved
        return pylock


def _versions(pylock: str) -> dict[str, tuple[str, str, bool]]:
    """Each package of a one-platform lock: (name as written, version, whether it has wheels)."""
    found: dict[str, tuple[str, str, bool]] = {}
    for package in tomllib.loads(pylock).get("packages", []):
        name = str(package.get("name", ""))
        version = str(package.get("version", ""))
        found[canonicalize_name(name)] = (name, version, bool(package.get("wheels")))
    return found


def _alignment(
    host: Mapping[str, tuple[str, str, bool]],
    there: Mapping[str, tuple[str, str, bool]],
    cutoffs: Mapping[str, str],
    pin: str,
    target: Target,
    index: ProjectIndex,
) -> tuple[dict[str, str], list[str]]:
    """Cutoffs that show the host's release's wheels for ``target``, and the
    ``NAME==VERSION`` constraints that hold those releases to the host's."""
    moved: dict[str, str] = {}
    held: list[str] = []
    for key, (name, version, _) in sorted(host.items()):
        theirs = there.get(key)
        if theirs is not None and theirs[1] == version and theirs[2]:
            continue  # the same release, with a wheel there
        try:
            release = Version(version)
        except InvalidVersion:
            continue
        files = index.files(key)
        uploads = [f.uploaded for f in files if f.version == release and target.installs(f)]
        if not uploads:  # no wheel of that release there: it falls forward, as revive does
            choice = first_installable(files, target, instant(cutoffs.get(key, pin)))
            if choice is not None:
                moved[key] = choice.cutoff
            continue
        cutoff = min(uploads).replace(microsecond=0) + timedelta(seconds=1)
        if cutoff > instant(cutoffs.get(key, pin)):
            moved[key] = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
        held.append(f"{name}=={version}")
    return (moved, held) if moved else ({}, [])
