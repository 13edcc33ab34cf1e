"""Where a PyPI environment's interpreter comes from: ``python=auto``.

``python=auto`` asks for the CPython that was current at the pin (3.6 for a
2018 pin), since that is what the notebook's packages were made for. An
:class:`InterpreterProvider` finds one; the default, :class:`MachinePythons`,
looks where people keep interpreters (pyenv's and asdf's installs,
``/usr/local/bin``, ``/usr/bin``, the ``PATH``), runs each candidate to check
its version, and takes the newest patch release of the series; only when
there is none does it ask uv (``uv python find``, then ``uv python install``).
A candidate that does not run (a pyenv shim for a version that is not the
global one says "command not found") is skipped, and the reason logged.
Where none can be had, the environment runs on the Python nbseal runs on,
and the lock and the cell say so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nbseal import uv
from nbseal.lock import FallForward
from nbseal.plan import host_python, host_python_version
from nbseal.pythons import (
    CPYTHON_RELEASES,
    python_at,
    python_series,
    python_version_of,
    same_series,
)

__all__ = [
    "InterpreterProvider",
    "MachinePythons",
    "Nearest",
    "PythonChoice",
    "UvPythons",
    "choose_python",
    "interpreter_provider",
    "nearest_python",
    "set_interpreter_provider",
]

log = logging.getLogger("nbseal.interpreters")

# Prints what a candidate is: its implementation and version (runs on Python 2 too).
_PROBE = (
    "import platform; print(platform.python_implementation() + ' ' + platform.python_version())"
)
_PROBE_TIMEOUT = 30.0


class InterpreterProvider(Protocol):
    async def find(self, request: str) -> tuple[str | None, str]:
        """The path of an interpreter for ``request`` (``3.6``), or None and why not."""


class UvPythons:
    """Interpreters uv finds or installs."""

    async def find(self, request: str) -> tuple[str | None, str]:
        return await uv.find_python(request)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _installs(root: Path, series: str) -> list[Path]:
    """``root/X.Y.Z/bin/pythonX.Y`` of each final release of ``series``, newest first
    (pyenv's ``versions``, asdf's ``installs/python``; virtualenvs and builds such as
    ``3.6.15-dev`` or ``miniconda3-4.7`` are not of this form and are left out)."""
    try:
        names = [p.name for p in root.iterdir()]
    except OSError:
        return []
    found = [n for n in names if re.fullmatch(rf"{re.escape(series)}\.\d+", n)]
    found.sort(key=_version_key, reverse=True)
    return [root / n / "bin" / f"python{series}" for n in found]


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def candidates(series: str) -> list[Path]:
    """Where an interpreter of ``series`` (``3.6``) may be on this machine, in order."""
    home = _home()
    pyenv = Path(os.environ.get("PYENV_ROOT") or home / ".pyenv")
    asdf = Path(os.environ.get("ASDF_DATA_DIR") or home / ".asdf")
    found = _installs(pyenv / "versions", series) + _installs(asdf / "installs" / "python", series)
    name = f"python{series}"
    found += [Path("/usr/local/bin") / name, Path("/usr/bin") / name]
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    unique: list[Path] = []
    for path in found:
        if path not in unique and (path.is_file() or path.is_symlink()):
            unique.append(path)
    return unique


async def probe(python: Path) -> tuple[str | None, str]:
    """``(version, "")`` of the CPython at ``python``, or ``(None, why it is not one)``."""
    try:
        process = await asyncio.create_subprocess_exec(
            str(python),
            "-c",
            _PROBE,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return None, f"does not run: {exc.strerror or exc}"
    try:
        out, err = await asyncio.wait_for(process.communicate(), _PROBE_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return None, f"did not answer in {_PROBE_TIMEOUT:.0f} s"
    said = out.decode(errors="replace").split()
    if process.returncode != 0 or len(said) != 2:
        lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
        # A traceback's last line says what went wrong; a shim's first line does.
        said_why = (
            (lines[-1] if lines and lines[0].startswith("Traceback") else lines[0]) if lines else ""
        )
        return None, f"does not run (exit {process.returncode}): {said_why}"
    implementation, version = said
    if implementation != "CPython":
        return None, f"is {implementation} {version}, not CPython"
    return version, ""


class MachinePythons:
    """Interpreters already on this machine, else those uv finds or installs."""

    def __init__(self, fallback: InterpreterProvider | None = None) -> None:
        self.fallback = fallback if fallback is not None else UvPythons()

    async def find(self, request: str) -> tuple[str | None, str]:
        found, skipped = await self.on_machine(request)
        if found is not None:
            return found, ""
        path, why = await self.fallback.find(request)
        if path is not None:
            return path, ""
        looked = "; ".join(skipped) or f"no python{python_series(request)} in the usual places"
        return None, f"{looked}; uv: {why}" if why else looked

    async def on_machine(self, request: str) -> tuple[str | None, list[str]]:
        """The newest CPython of ``request`` (``3.6``, or exactly ``3.6.15``) on this
        machine, and why each other candidate was skipped."""
        series = python_series(request)
        best: tuple[tuple[int, ...], Path] | None = None
        skipped: list[str] = []
        for path in candidates(series):
            version, why = await probe(path)
            if version is None or not same_series(version, request):
                why = why or f"is {version}, not {request}"
                log.info("python=%s: skipped %s: %s", request, path, why)
                skipped.append(f"{path} {why}")
                continue
            if best is None or _version_key(version) > best[0]:
                best = (_version_key(version), path)
        return (str(best[1]) if best else None), skipped


_provider: InterpreterProvider = MachinePythons()


def interpreter_provider() -> InterpreterProvider:
    return _provider


def set_interpreter_provider(provider: InterpreterProvider | None) -> None:
    """Use ``provider`` from now on (a stand-in, in a test); None: the default again."""
    global _provider
    _provider = provider if provider is not None else MachinePythons()


@dataclass(frozen=True)
class PythonChoice:
    python: str  # the interpreter's path
    note: FallForward | None  # set when the pin's Python could not be had


@dataclass(frozen=True)
class Nearest:
    """What ``python=auto`` finds for a pin: the series current then (``wanted``), and
    the interpreter here of it or, failing that, of the nearest series after it."""

    wanted: str
    series: str | None  # the series found (None: none older than this Python)
    python: str | None
    why: str  # why ``wanted`` itself could not be had ("" when it was)


def _key(series: str) -> tuple[int, ...]:
    return tuple(int(p) for p in series.split("."))


def wanted_at(pin: str) -> str | None:
    """The CPython series ``python=auto`` asks for at ``pin``, when it is not this one's."""
    wanted = python_at(pin)
    if wanted is None or host_python_version().startswith(f"{wanted}."):
        return None
    return wanted


async def nearest_python(wanted: str, provider: InterpreterProvider) -> Nearest:
    """The interpreter of ``wanted`` on this machine, else of the first series after
    it and older than this Python (2015's 3.4 is rarely kept; 3.6 runs what 3.4 ran far
    closer than today's Python does)."""
    found, why = await provider.find(wanted)
    if found is not None:
        return Nearest(wanted, wanted, found, "")
    here = _key(python_series(host_python_version()))
    later = sorted((v for v in CPYTHON_RELEASES if _key(wanted) < _key(v) < here), key=_key)
    for series in later:
        path, _ = await provider.find(series)
        if path is not None:
            return Nearest(wanted, series, path, why)
    return Nearest(wanted, None, None, why)


async def choose_python(pin: str) -> PythonChoice:
    """The interpreter ``python=auto`` gives at ``pin``: the CPython current then (or
    the nearest after it that is here), else ours."""
    wanted = wanted_at(pin)
    if wanted is None:
        return PythonChoice(host_python(), None)
    nearest = await nearest_python(wanted, interpreter_provider())
    if nearest.python is not None and nearest.series == wanted:
        return PythonChoice(nearest.python, None)
    cause = nearest.why or "none found"
    if nearest.python is not None and nearest.series is not None:
        reason = (
            f"python=auto: CPython {wanted}, current at the pin, cannot be had here ({cause});"
            f" {nearest.series}, the nearest after it, runs the environment"
        )
        version = python_version_of(nearest.python)
        return PythonChoice(nearest.python, FallForward("python", wanted, version, reason))
    reason = (
        f"python=auto: CPython {wanted}, current at the pin, cannot be had here"
        f" ({cause}); the environment runs on this Python"
    )
    return PythonChoice(host_python(), FallForward("python", wanted, host_python_version(), reason))
