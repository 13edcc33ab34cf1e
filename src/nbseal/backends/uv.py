"""The PyPI backend: uv resolves into a PEP 751 lock and installs it into a venv."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from nbseal import uv
from nbseal.backends.base import Backend
from nbseal.backends.kernelspecs import KernelCommand, find_kernel_command
from nbseal.errors import BuildError
from nbseal.fsutil import remove_tree
from nbseal.lock import PEP751_BACKEND, Lock
from nbseal.plan import EnvironmentSpec, host_platform
from nbseal.progress import Progress
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


@functools.lru_cache(maxsize=8)
def python_version_of(python: str) -> str:
    """The version of the interpreter at ``python`` (no subprocess for our own)."""
    if python == sys.executable:
        return platform.python_version()
    result = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(
            f"the interpreter {python} does not run",
            context=result.stderr.strip(),
            hint="pass an existing Python with python=X.Y or install it",
        )
    return result.stdout.strip()


class UvBackend(Backend):
    """PyPI packages into a venv on the host's interpreter, its kernel under bwrap."""

    name = PEP751_BACKEND

    def interpreter_key(self, spec: EnvironmentSpec) -> str:
        return python_version_of(spec.python)

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        return find_kernel_command(env_path, wanted)

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        return BwrapLauncher(policy) if sealed else DirectLauncher()

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        progress.step(f"resolving {' '.join(spec.requirements)} as of {spec.pin}")
        pylock = await uv.compile_pylock(
            spec.requirements,
            python=spec.python,
            exclude_newer=spec.pin,
            workdir=workdir,
            on_line=_reporter(progress),
        )
        return Lock(
            backend=self.name,
            requirements=spec.requirements,
            python=python_version_of(spec.python),
            platform=host_platform(),
            exclude_newer=spec.pin,
            pylock=pylock,
        )

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        """Build in a folder inside uv's cache, then move the venv to ``dest``.

        The install runs sealed, and a sandbox's bind mounts are separate
        mounts: uv can hard-link its cached files into the venv only when
        both are in one (linking across mounts fails and uv copies, 1.6x
        slower). So the build folder lives in the cache, the one writable
        tree of the install; the venv (``--relocatable``) is moved after.
        """
        python = _interpreter_for(lock)
        cache = uv.prepared_cache()
        sweep_orphans(cache, also_owned_by=sandbox_identity().host_uid)  # killed builds
        work = make_runtime_dir("nbseal-build-", cache)
        try:
            sandbox_identity().hand_over(work)  # the install runs as the sandbox's uid
            venv = work / "env"
            progress.step("creating virtual environment")
            await uv.create_venv(venv, python=python)
            lockfile = venv / "pylock.toml"
            lockfile.write_text(lock.pylock)
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
            raise BuildError(
                f"the kernelspec of {package} could not be installed",
                context=output.decode(errors="replace").strip()[-2000:],
                hint="pin another version of the kernel package",
            )


def _move_tree(source: Path, dest: Path) -> None:
    """Rename ``source`` to ``dest``; copy (links kept) when they are on two file systems."""
    try:
        os.rename(source, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copytree(source, dest, symlinks=True)


def _interpreter_for(lock: Lock) -> str:
    from nbseal.plan import host_python, host_python_version

    if host_python_version() != lock.python:
        raise BuildError(
            f"this lock was made for Python {lock.python}, but nbseal runs on "
            f"Python {host_python_version()}",
            hint="run nbseal with the Python the lock names, or re-lock with `nbseal lock`",
        )
    return host_python()
