"""Start a Guix environment's kernel with ``guix shell --container``.

Guix seals its own kernels: ``guix shell --container --profile=PROFILE
[--network] --share=SOCKETS [--expose=DATA=WORKDIR/NAME]... -- KERNEL ARGV``,
started in the notebook's working directory, which ``guix shell --container``
shares (see :func:`container_argv`, :class:`GuixLauncher`). A built Guix
environment is a store entry whose ``profile`` links to the profile in
``/gnu/store`` (:mod:`nbseal.backends.guix` builds it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from nbseal.errors import GuixUnavailableError
from nbseal.sandbox.launch import Launcher, LaunchRequest, spawn_logged
from nbseal.sandbox.policy import SandboxPolicy

__all__ = ["GuixLauncher", "container_argv", "find_guix", "guix_profile"]


def find_guix(context: str = "") -> str:
    """The ``guix`` command; raises :class:`GuixUnavailableError` when there is none."""
    found = shutil.which("guix")
    if found is None:
        raise GuixUnavailableError(context)
    return found


def container_argv(
    guix: str,
    profile: Path,
    kernel_argv: Sequence[str],
    *,
    policy: SandboxPolicy,
    socket_dir: Path,
    preserve: Iterable[str] = (),
    container: bool = True,
) -> list[str]:
    """``guix shell --container`` running ``kernel_argv`` under ``policy``.

    Run it in ``policy.workdir``: ``guix shell --container`` shares the
    current directory, writable, at the same path, and starts there. The
    socket directory (connection file and ipc sockets) is shared writable;
    data is exposed read-only under its name in the working directory.
    ``preserve`` names the variables (e.g. a kernelspec's ``env``) that pass
    into the container. Without ``container``, the kernel runs unsealed.
    """
    argv = [guix, "shell"]
    if container:
        argv.append("--container")
        if policy.network:
            argv.append("--network")
        argv.append(f"--share={socket_dir}")
        for share in policy.shares:
            option = "--share" if share.mode == "rw" else "--expose"
            argv.append(f"{option}={share.host_path}")
        argv += [f"--expose={host}={inside}" for host, inside in policy.readonly_binds]
    argv.append(f"--profile={profile}")
    argv += [f"--preserve=^{re.escape(name)}$" for name in sorted(preserve)]
    return [*argv, "--", *kernel_argv]


def guix_profile(env_path: Path) -> Path:
    """The profile in ``/gnu/store`` that a built Guix environment links to."""
    return Path(os.path.realpath(env_path / "profile"))


class GuixLauncher(Launcher):
    """Start a Guix environment's kernel with ``guix shell --container``.

    Sealed as Guix seals: its own namespaces, only the profile's store items,
    the working directory, the sockets and what the policy grants. Unsealed
    (``--no-sandbox``) it runs ``guix shell --profile`` without a container.
    Not run by the tests: it needs Guix.
    """

    def __init__(self, policy: SandboxPolicy, *, sealed: bool = True, guix: str | None = None):
        self.policy = policy if sealed else replace(policy, network=True)
        self.sealed = sealed
        self._guix = guix

    def build_argv(self, request: LaunchRequest) -> list[str]:
        return container_argv(
            self._guix or find_guix(),
            guix_profile(request.env_path),
            request.argv,
            policy=self.policy,
            socket_dir=request.socket_dir,
            # A pid namespace's parent is pid 1: ipykernel would take that for its parent dying.
            preserve=[name for name in request.env if name != "JPY_PARENT_PID"],
            container=self.sealed,
        )

    async def launch(self, request: LaunchRequest) -> asyncio.subprocess.Process:
        argv = self.build_argv(request)
        env = dict(os.environ)
        env.update(request.env)
        env.pop("JPY_PARENT_PID", None)
        return await spawn_logged(argv, env=env, cwd=request.cwd, log_path=request.log_path)
