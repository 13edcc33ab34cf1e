"""The PyPI backend: uv resolves into a PEP 751 lock and installs it into a venv."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from nbseal import uv
from nbseal.backends.base import Backend
from nbseal.backends.kernelspecs import KernelCommand, find_kernel_command
from nbseal.errors import BuildError
from nbseal.fsutil import remove_tree
from nbseal.lock import PEP751_BACKEND, Lock, relaxed_pylock
from nbseal.plan import EnvironmentSpec, host_platform
from nbseal.progress import Progress
from nbseal.pylock_platforms import uv_target
from nbseal.pythons import (
    host_python,
    host_python_version,
    interpreter_note,
    python_series,
    python_version_of,
    same_series,
)
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans
from nbseal.sandbox.build import sealed_step
from nbseal.sandbox.bwrap import BwrapLauncher
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.launch import DirectLauncher, Launcher
from nbseal.sandbox.policy import SandboxPolicy

__all__ = ["UvBackend"]

# uv's summary lines ("Resolved 30 packages in 1.2s", "Building numpy==1.14.5": an sdist
# compiling, maybe for minutes) make good progress steps.
_SUMMARY = re.compile(r"^(Resolved|Prepared|Installed|Downloading|Building|Audited|Bytecode)\b")


def _reporter(progress: Progress) -> uv.LineCallback:
    def on_line(line: str) -> None:
        if _SUMMARY.match(line.strip()):
            progress.step(line.strip())

    return on_line


class UvBackend(Backend):
    """PyPI packages into a venv on the host's interpreter, its kernel under bwrap."""

    name = PEP751_BACKEND

    def interpreter_key(self, spec: EnvironmentSpec) -> str:
        """The series a resolution serves: any 3.11.x resolves the same (universal)."""
        return spec.python_request or python_series(python_version_of(spec.python))

    def describe(self, lock: Lock | None) -> dict[str, Any] | None:
        """The Python the environment runs on here, and how it differs from the lock's."""
        if lock is None or not lock.python:
            return None
        built = _build_version(lock)
        note = self.interpreter_note(lock)
        return {"python": f"{built} ({note})" if note else built}

    def interpreter_note(self, lock: Lock) -> str | None:
        return interpreter_note(lock.python, _build_version(lock)) if lock.python else None

    def upgraded(self, lock: Lock) -> Lock | None:
        """A lock made before locks served a series serves its own now (no re-resolve)."""
        if lock.serves or not lock.python:
            return None
        series = python_series(lock.python)
        return replace(lock, serves=series, pylock=relaxed_pylock(lock.pylock, series))

    def store_key(self, lock: Lock) -> str:
        """The lock's key when the interpreter and machine that build it here are the
        ones that made it; else a key of all, so two patch releases (or an x86_64 and
        an aarch64 machine sharing a store) never share a tree."""
        built_with, here = _build_version(lock), host_platform()
        if built_with == lock.python and here == lock.platform:
            return lock.key
        if here == lock.platform:  # as keyed before locks served other machines
            return hashlib.sha256(f"{lock.key}\0python={built_with}".encode()).hexdigest()[:32]
        seed = f"{lock.key}\0python={built_with}\0platform={here}"
        return hashlib.sha256(seed.encode()).hexdigest()[:32]

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        return find_kernel_command(env_path, wanted)

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        return BwrapLauncher(policy) if sealed else DirectLauncher()

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        """Resolve at the pin; what has no wheel there falls forward (see .revive)."""
        from nbseal.backends.interpreters import choose_python
        from nbseal.backends.machines import for_linux_machines
        from nbseal.backends.metadata_repair import Repaired
        from nbseal.backends.pypi_index import target_for
        from nbseal.backends.revive import revive

        python, python_note = spec.python, None
        if spec.python_request == "auto":
            chosen = await choose_python(spec.pin)
            python, python_note = chosen.python, chosen.note
        elif spec.python_request is not None:
            python = await _interpreter(spec.python_request)
        # The lock serves the series (any 3.11.x), or the one release python= names.
        serves = spec.python_request
        if serves is None or serves == "auto":
            serves = python_series(python_version_of(python))
        progress.step(
            f"resolving {' '.join(spec.requirements)} as of {spec.pin}"
            f" for Python {python_version_of(python)}"
        )

        repaired: list[Repaired] = []  # metadata uv cannot parse, as pip read it

        async def compile_with(
            cutoffs: Mapping[str, str], constraints: Sequence[str], machine: str | None = None
        ) -> str:
            return await uv.compile_pylock(
                spec.requirements,
                python=python,
                exclude_newer=spec.pin,
                workdir=workdir,
                on_line=_reporter(progress),
                exclude_newer_packages=cutoffs,
                constraints=constraints,
                serves=serves,
                python_platform=uv_target(machine) if machine else None,
                dependency_metadata=repaired,
            )

        revival = await revive(
            spec.requirements,
            pin=spec.pin,
            target=target_for(python),
            compile_with=compile_with,
            progress=progress,
            source=spec.build == "source",
            repaired=repaired,
        )
        notes = (python_note, *revival.fall_forwards) if python_note else revival.fall_forwards
        for note in notes:
            progress.step(str(note))
        pylock = await for_linux_machines(
            revival,
            compile_with,
            progress,
            pin=spec.pin,
            python_version=python_version_of(python),
        )
        return Lock(
            backend=self.name,
            requirements=spec.requirements,
            python=python_version_of(python),
            platform=host_platform(),
            exclude_newer=spec.pin,
            pylock=pylock,
            fall_forwards=notes,
            exclude_newer_package=revival.cutoffs,
            build=spec.build or "",
            serves=serves,
        )

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        """Build in a folder inside uv's cache, then move the venv to ``dest``.

        The install runs sealed, and a sandbox's bind mounts are separate
        mounts: uv can hard-link its cached files into the venv only when
        both are in one (linking across mounts fails and uv copies, 1.6x
        slower). So the build folder lives in the cache, the one writable
        tree of the install; the venv (``--relocatable``) is moved after.
        """
        python = await _interpreter_for(lock)
        cache = uv.prepared_cache()
        sweep_orphans(cache, also_owned_by=sandbox_identity().host_uid)  # killed builds
        # One folder name per lock: uv keeps what it learns of an interpreter under
        # the interpreter's path, so a rebuild of the lock adds nothing to its cache.
        work = make_runtime_dir("nbseal-build-", cache, name=self.store_key(lock))
        try:
            sandbox_identity().hand_over(work)  # the install runs as the sandbox's uid
            venv = work / "env"
            progress.step("creating virtual environment")
            await uv.create_venv(venv, python=python)
            lockfile = venv / "pylock.toml"
            # A lock made before locks served a series names its own patch release.
            series = lock.serves or python_series(lock.python)
            pylock = lock.pylock if lock.serves else relaxed_pylock(lock.pylock, series)
            lockfile.write_text(uv.cached_pylock(pylock))  # served by uv's cache, hash-checked
            progress.step(f"installing {len(lock.packages())} packages")
            await uv.sync_pylock(venv, lockfile, on_line=_reporter(progress))
            await _install_kernelspecs(lock, venv, progress)
            await asyncio.to_thread(_move_tree, venv, dest)
        finally:
            remove_tree(work)


# Kernels whose wheel carries no kernelspec: their own install step writes it
# into the environment's prefix (share/jupyter/kernels/NAME), at build time.
KERNEL_INSTALL_STEPS: dict[str, tuple[str, ...]] = {
    "bash-kernel": ("-m", "bash_kernel.install", "--prefix", "{prefix}"),
}


async def _install_kernelspecs(lock: Lock, dest: Path, progress: Progress) -> None:
    installed = {p.name.lower().replace("_", "-") for p in lock.packages()}
    for package, args in KERNEL_INSTALL_STEPS.items():
        if package not in installed:
            continue
        progress.step(f"installing the kernelspec of {package}")
        # The package's own code: run in the build sandbox, writing only the environment.
        real = Path(os.path.realpath(dest))
        python = real / "bin" / "python"
        argv = [str(python), *(a.replace("{prefix}", str(real)) for a in args)]
        step = sealed_step(
            argv,
            readable=uv.python_prefixes(str(python)),
            writable=(real,),
            cwd=real,
            env={"PYTHONNOUSERSITE": "1"},
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *step.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env={},
                pass_fds=(step.seccomp_fd,),
            )
        finally:
            step.close()
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise BuildError.kernelspec_not_installed(
                package, output.decode(errors="replace").strip()[-2000:]
            )


def _move_tree(source: Path, dest: Path) -> None:
    """Rename ``source`` to ``dest``; copy (links kept) when they are on two file systems."""
    try:
        os.rename(source, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(source, dest, symlinks=True)


def _build_version(lock: Lock) -> str:
    """The version of the interpreter that builds ``lock`` here (see _interpreter_for)."""
    here = host_python_version()
    return here if same_series(here, lock.serves or python_series(lock.python)) else lock.python


async def _interpreter_for(lock: Lock) -> str:
    """The host's Python if it is one the lock serves, else one uv finds of them."""
    return await _interpreter(lock.serves or python_series(lock.python))


async def _interpreter(wanted: str) -> str:
    """An interpreter of ``wanted`` (a series, ``3.11``, or a release, ``3.11.7``):
    the host's when it is one, else one uv finds or installs (uv's managed Pythons)."""
    from nbseal.backends.interpreters import interpreter_provider

    here = host_python_version()
    if same_series(here, wanted):
        return host_python()
    found, why = await interpreter_provider().find(wanted)
    if found is not None and same_series(python_version_of(found), wanted):
        return found
    raise BuildError.python_missing(wanted, here, why)
