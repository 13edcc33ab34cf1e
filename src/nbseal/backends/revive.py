"""A resolution that revives: old pins on today's Python, without compiling.

uv resolves a spec as the index stood at its pin. A release from then often
has no wheel for today's interpreter, and uv would compile it from source
(numpy 1.14 on CPython 3.11: minutes, then a failure). Here such a package
*falls forward*, alone: it gets a cutoff of its own (uv's
``--exclude-newer-package NAME=INSTANT``) just after the upload of its first
wheel that installs here, and its dependencies that the new release needs
newer than the pin follow it as far as they must. The kernel nbseal adds (a
bare ``ipykernel``), when the pin is older than the interpreter, is taken at
its first release after that interpreter came out, with its dependencies as
they stood then: a kernel from before its Python does not start. This
repeats a bounded number of rounds, since a release taken forward may bring
new dependencies. A package that never had such a wheel is
built from its sdist, and said so; with ``build=source`` nothing falls
forward and every package without a wheel is compiled, said so too.

Build tools (setuptools and the PEP 517 backends) are never held back by the
pin: with a pin before 2019-02 uv's own ``setuptools>=40.8`` would not exist.
They resolve as of :data:`BUILD_TOOLS_PIN` or the pin, whichever is later.
Cython is not among them: it is a compiler whose output depends on its
version (Cython 3 changed defaults old ``.pyx`` files rely on), so it stays
as the pin has it, and it matters only to what is compiled anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from nbseal._toml import tomllib
from nbseal.backends.metadata_repair import Repaired, invalid_metadata, repair
from nbseal.backends.pypi_index import (
    Choice,
    ProjectIndex,
    Target,
    first_installable,
    first_release,
    instant,
    newest_at,
)
from nbseal.errors import ResolutionError
from nbseal.lock import FallForward
from nbseal.plan import DEFAULT_PIN
from nbseal.progress import Progress
from nbseal.pythons import python_release

__all__ = [
    "BUILD_TOOLS",
    "BUILD_TOOLS_PIN",
    "Revival",
    "build_tool_cutoffs",
    "failed_build",
    "locked_versions",
    "revive",
]

# PEP 517 build backends and the plugins they load, as uv and pip install them
# into a build's isolated environment.
BUILD_TOOLS = (
    "setuptools",
    "setuptools-scm",
    "wheel",
    "flit-core",
    "hatchling",
    "hatch-vcs",
    "poetry-core",
    "pdm-backend",
    "scikit-build-core",
    "meson-python",
)
# Build tools resolve as of nbseal's own pin (that of its default environment):
# recent, and the same on every machine.
BUILD_TOOLS_PIN = DEFAULT_PIN
MAX_ROUNDS = 8
# Kernels a notebook gets without naming a version (nbseal adds ipykernel).
KERNELS = ("ipykernel",)

# Resolves the spec with per-package cutoffs and constraints (which bind what
# is installed, not what builds it); returns pylock.toml's text.
Compile = Callable[[Mapping[str, str], Sequence[str]], Awaitable[str]]


def build_tool_cutoffs(pin: str) -> dict[str, str]:
    """``--exclude-newer-package`` cutoffs that keep build tools from the pin's past."""
    cutoff = max(pin, BUILD_TOOLS_PIN, key=instant)
    return dict.fromkeys(BUILD_TOOLS, cutoff)


@dataclass
class Revival:
    """The outcome: the lock's text and what was not taken as the pin has it."""

    pylock: str
    fall_forwards: tuple[FallForward, ...] = ()
    # The per-package cutoffs of the resolution that gave ``pylock``.
    cutoffs: tuple[tuple[str, str], ...] = ()
    # The constraints (uv's ``-c``) of the resolution that gave ``pylock``.
    constraints: tuple[str, ...] = ()


def locked_versions(pylock: str, target: Target) -> dict[str, tuple[str, str, bool]]:
    """Each package ``pylock`` installs on ``target``: (name as written, version,
    whether it has a wheel ``target`` installs).

    A universal lock names packages for other platforms (behind markers) and
    wheels for every platform: only ``target``'s count.
    """
    environment = {
        "python_version": ".".join(target.python_version.split(".")[:2]),
        "python_full_version": target.python_version,
    }
    found: dict[str, tuple[str, str, bool]] = {}
    for package in tomllib.loads(pylock).get("packages", []):
        marker = package.get("marker")
        if isinstance(marker, str) and marker and not Marker(marker).evaluate(environment):
            continue
        name = str(package.get("name", ""))
        wheels = any(_wheel_fits(wheel, target) for wheel in package.get("wheels", []))
        found[canonicalize_name(name)] = (name, str(package.get("version", "")), wheels)
    return found


def _wheel_fits(wheel: Mapping[str, object], target: Target) -> bool:
    where = str(wheel.get("name") or wheel.get("url") or wheel.get("path") or "")
    filename = where.rsplit("/", 1)[-1]
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return True  # not a name we can read: uv chose it for this target
    return bool(tags & target.tags)


@dataclass
class _Plan:
    """Per-package cutoffs beyond the pin, and why each was given."""

    pin: str
    target: Target
    index: ProjectIndex
    cutoffs: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    # Packages already examined for a wheel (each once: no loop).
    examined: set[str] = field(default_factory=set)

    def cutoff_of(self, key: str) -> str:
        return self.cutoffs.get(key, self.pin)

    def move(self, key: str, cutoff: str, reason: str) -> bool:
        if instant(cutoff) <= instant(self.cutoff_of(key)):
            return False
        self.cutoffs[key] = cutoff
        self.reasons[key] = reason
        return True

    def fall_forward(self, key: str) -> Version | None:
        """Give ``key`` the cutoff of its first installable release after the pin."""
        self.examined.add(key)
        files = self.index.files(key)
        choice = first_installable(files, self.target, instant(self.pin))
        if choice is None:
            return None
        self.move(key, choice.cutoff, f"first wheel for {self.target.label}")
        return choice.version

    def carry(self, key: str, version: Version, *, whole: bool = False) -> None:
        """Move the dependencies that ``key``'s new release ``version`` needs newer.

        A dependency the pin cannot satisfy is taken as the index stood when
        ``key`` got its cutoff: releases of one moment were made to work together.
        With ``whole``, every dependency is (the kernel's: it must start).
        """
        queue = [(key, version)]
        seen: set[tuple[str, Version]] = set()
        while queue:
            name, release = queue.pop()
            if (name, release) in seen:
                continue
            seen.add((name, release))
            for requirement in self.index.requirements(name, release, self.target):
                why = f"needed by {name} {release} ({requirement})"
                moved = self.meet(requirement, why, self.cutoff_of(name), whole=whole)
                if moved is not None:
                    queue.append((canonicalize_name(requirement.name), moved))

    def meet(
        self, requirement: Requirement, reason: str, at: str | None = None, *, whole: bool = False
    ) -> Version | None:
        """Move ``requirement``'s package if nothing at its cutoff fits (with ``whole``:
        always, to ``at``); the release taken.

        It moves to ``at``, or else to its first release that fits and installs.
        """
        key = canonicalize_name(requirement.name)
        files = self.index.files(key)
        specifier = requirement.specifier or SpecifierSet()
        fits = newest_at(files, self.target, instant(self.cutoff_of(key)), specifier)
        if fits is not None and not (whole and at is not None):
            return None
        choice = None
        if at is not None:
            version = newest_at(files, self.target, instant(at), specifier)
            choice = Choice(version, at) if version is not None else None
        after = instant(self.cutoff_of(key))
        choice = choice or first_installable(files, self.target, after, specifier)
        choice = choice or first_release(files, self.target, after, specifier)
        if choice is None or not self.move(key, choice.cutoff, reason):
            return None
        return choice.version

    def renew_kernel(self, requirements: tuple[str, ...]) -> None:
        """A kernel the notebook does not pin, from before this Python, is taken newer.

        A Jupyter kernel from before its interpreter existed does not start on
        it (ipykernel 4.8 of 2018 on CPython 3.11); the notebook runs in the
        kernel's first release that came after.
        """
        released = python_release(self.target.python_version)
        if released is None or instant(self.pin) >= instant(released):
            return
        for text in requirements:
            if canonicalize_name(text) not in KERNELS:  # only a bare name: ipykernel
                continue
            key = canonicalize_name(text)
            choice = first_installable(self.index.files(key), self.target, instant(released))
            why = f"the kernel: first release after {self.target.label} came out"
            if choice is not None and self.move(key, choice.cutoff, why):
                self.carry(key, choice.version, whole=True)


def _merged(tools: Mapping[str, str], applied: Mapping[str, str]) -> dict[str, str]:
    """The cutoffs of a resolution: build tools never earlier than their own cutoff
    (a package carried as of a moment may name setuptools among its needs)."""
    merged = {**tools, **applied}
    for key, cutoff in tools.items():
        merged[key] = max(cutoff, applied.get(key, cutoff), key=instant)
    return merged


def _kernel_whole(plan: _Plan, requirements: tuple[str, ...], pylock: str) -> None:
    """The kernel nbseal adds starts only with dependencies of its own time.

    When one of them fell forward (tornado 4.5 → 6.1: its first wheel for
    CPython 3.6), the kernel of the pin may not run with it (pyzmq 16, which
    ipykernel 4.6 needs, calls ``IOLoop.initialized``, gone in tornado 5); so
    the kernel and all it needs are taken as of the latest such cutoff: releases
    of one moment were made to work together.
    """
    kernels = [canonicalize_name(t) for t in requirements if canonicalize_name(t) in KERNELS]
    if not kernels or not plan.cutoffs:
        # Nothing fell forward: no dependency can be newer than the kernel's time.
        # (Walking the kernel's closure reads each package's metadata over
        # HTTP: 12 s of every resolution at a recent pin.)
        return
    locked = locked_versions(pylock, plan.target)
    for kernel in kernels:
        if kernel not in locked:
            continue
        closure: set[str] = set()
        queue = [kernel]
        while queue:
            name = queue.pop()
            if name in closure or name not in locked:
                continue
            closure.add(name)
            version = _version(locked[name][1])
            if version is not None:
                queue += [
                    canonicalize_name(r.name)
                    for r in plan.index.requirements(name, version, plan.target)
                ]
        moved = [k for k in closure - {kernel} if k in plan.cutoffs]
        if not moved:
            continue
        latest = max(moved, key=lambda k: instant(plan.cutoffs[k]))
        cutoff = plan.cutoffs[latest]
        if instant(cutoff) <= instant(plan.cutoff_of(kernel)):
            continue
        files = plan.index.files(kernel)
        version = newest_at(files, plan.target, instant(cutoff))
        why = f"the kernel: taken with {latest} {cutoff[:10]}, as its dependencies then were"
        if version is not None and plan.move(kernel, cutoff, why):
            plan.carry(kernel, version, whole=True)


async def revive(
    requirements: tuple[str, ...],
    *,
    pin: str,
    target: Target,
    compile_with: Compile,
    progress: Progress,
    source: bool = False,
    index: ProjectIndex | None = None,
    repaired: list[Repaired] | None = None,
) -> Revival:
    """Resolve ``requirements`` at ``pin``, falling forward where the pin has no wheel.

    With ``source`` (``build=source``), nothing falls forward: the pin's
    versions are kept and those without a wheel are listed as compiled.
    A release whose metadata uv cannot parse gets it repaired, appended to
    ``repaired`` (which ``compile_with`` passes to uv), and the resolution
    is tried again (see :mod:`nbseal.backends.metadata_repair`).
    """
    repaired = repaired if repaired is not None else []
    tools = build_tool_cutoffs(pin)
    plan = _Plan(pin, target, index or ProjectIndex())
    # The index is read over HTTP: in a thread, so a kernel's loop keeps serving.
    # Also with build=source: the kernel must start. A requirement the pin has
    # no release of stays an error: the declaration contradicts its pin.
    await asyncio.to_thread(plan.renew_kernel, requirements)
    pinned: dict[str, str] = {}  # what the pin alone gives, as first seen
    pylock, failure = "", None
    applied: dict[str, str] | None = None  # the cutoffs of the last resolution
    for _ in range(MAX_ROUNDS):
        if plan.cutoffs == applied:
            break
        applied = dict(plan.cutoffs)
        if applied:
            progress.step(
                "falling forward: "
                + ", ".join(f"{k} as of {applied[k][:10]}" for k in sorted(applied))
            )
        try:
            pylock, failure = await compile_with(_merged(tools, applied), ()), None
        except ResolutionError as exc:
            # Reading an sdist's metadata builds it: a build that fails falls forward.
            failure = exc
            said = f"{exc.cause}\n{exc.stderr}"
            if await asyncio.to_thread(_repair_metadata, plan, said, repaired):
                applied = None  # the same cutoffs again, with the repaired metadata
                continue
            # uv names the package first, then the build's long output: the
            # root cause holds that first line when the kept tail does not.
            failed = None if source else failed_build(said)
            if failed is None or failed[0] in plan.examined or failed[0] in tools:
                raise
            pinned.setdefault(*failed)
            await asyncio.to_thread(_fall_forward, plan, failed[0])
            continue
        for key, (_, version, _) in locked_versions(pylock, plan.target).items():
            if key not in applied:
                pinned.setdefault(key, version)
        if source:
            break
        await asyncio.to_thread(_fall_forward_compiled, plan, pylock, tools)
        await asyncio.to_thread(_kernel_whole, plan, requirements, pylock)
    if failure is not None:
        raise failure
    # A build tool also needed at run time keeps the pin's version there (old
    # code imports pkg_resources, which setuptools 81 dropped); builds still
    # get the recent one, since uv's constraints do not bind build requirements.
    caps = await asyncio.to_thread(_runtime_caps, plan, pylock, tools)
    constraints: tuple[str, ...] = ()
    if caps:
        with contextlib.suppress(ResolutionError):  # needed newer at run time: it stays
            pylock = await compile_with(_merged(tools, applied or {}), caps)
            constraints = tuple(caps)
    notes = await asyncio.to_thread(_report, pylock, pinned, plan, source, tools)
    cutoffs = tuple(sorted(_merged(tools, applied or {}).items()))
    return Revival(pylock, notes, cutoffs, constraints)


_FAILED_BUILD = re.compile(r"Failed to (?:download and )?build `([A-Za-z0-9._-]+)==([^`\s]+)`")


def failed_build(stderr: str) -> tuple[str, str] | None:
    """The package (normalised name, version) whose build made uv fail, if uv names one."""
    match = _FAILED_BUILD.search(stderr)
    return (canonicalize_name(match.group(1)), match.group(2)) if match else None


def _repair_metadata(plan: _Plan, said: str, repaired: list[Repaired]) -> bool:
    """Repair the release uv could not read: the one it names as invalid, or, when
    it fell back to building an old sdist, the newest release at the package's cutoff
    that has a wheel here (uv skips one whose metadata does not parse). Whether a
    new repair was added."""
    named = invalid_metadata(said)
    if named is not None:
        key, version = named[0], _version(named[1])
    else:
        failed = failed_build(said)
        if failed is None:
            return False
        key = failed[0]
        files = plan.index.files(key)
        version = newest_at(files, plan.target, instant(plan.cutoff_of(key)))
    if version is None:
        return False
    if any(r["name"] == key and r["version"] == str(version) for r in repaired):
        return False
    fixed = repair(plan.index, key, version, plan.target)
    if fixed is None:
        return False
    repaired.append(fixed)
    return True


def _fall_forward(plan: _Plan, key: str) -> None:
    version = plan.fall_forward(key)
    if version is not None:
        plan.carry(key, version)


def _fall_forward_compiled(plan: _Plan, pylock: str, tools: Mapping[str, str]) -> None:
    """Each package ``pylock`` would compile falls forward (examined once)."""
    for key, (_, _, wheels) in locked_versions(pylock, plan.target).items():
        if not wheels and key not in plan.examined and key not in tools:
            _fall_forward(plan, key)


def _runtime_caps(plan: _Plan, pylock: str, tools: Mapping[str, str]) -> list[str]:
    """``NAME<=VERSION`` for each build tool the lock installs newer than the pin has it."""
    caps = []
    for key, (name, version, _) in sorted(locked_versions(pylock, plan.target).items()):
        if key in tools:
            pin_era = newest_at(plan.index.files(key), plan.target, instant(plan.pin))
            if pin_era is not None and _version(version) != pin_era:
                caps.append(f"{name}<={pin_era}")
    return caps


def _report(
    pylock: str, pinned: dict[str, str], plan: _Plan, source: bool, tools: Mapping[str, str]
) -> tuple[FallForward, ...]:
    notes = []
    for key, (name, version, wheels) in sorted(locked_versions(pylock, plan.target).items()):
        before = pinned.get(key)
        if before is None and key in plan.reasons:  # moved before any resolution held it
            pin_era = newest_at(plan.index.files(key), plan.target, instant(plan.pin))
            before = None if pin_era is None else str(pin_era)
        if key in plan.reasons and before != version:
            notes.append(FallForward(name, before, version, plan.reasons[key]))
        elif not wheels:
            notes.append(FallForward(name, version, version, _source_reason(plan, key, source)))
        elif key in tools:
            pin_era = newest_at(plan.index.files(key), plan.target, instant(plan.pin))
            if pin_era is not None and _version(version) != pin_era:
                why = f"a build tool: taken as of {tools[key][:10]}, not the pin"
                notes.append(FallForward(name, str(pin_era), version, why))
    return tuple(notes)


def _source_reason(plan: _Plan, key: str, source: bool) -> str:
    label = plan.target.label
    if source:
        return f"built from source (build=source; no wheel for {label})"
    files = plan.index.files(key)
    if not any(plan.target.installs(f) for f in files):
        return f"built from source: no release has a wheel for {label}"
    return f"built from source: this version has no wheel for {label}, another requirement holds it"


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
