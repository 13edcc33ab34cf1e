"""Kernels of Debian root file systems, driven like the sandbox tests drive theirs."""

from __future__ import annotations

import time
from pathlib import Path

from nbseal.backends.debian.kernel import find_rootfs_kernel_command
from nbseal.backends.kernelspecs import KernelCommand
from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.rootfs import RootfsLauncher
from tests.sandbox.helpers import LoopThread, SealedKernel


class RootfsKernel(SealedKernel):
    """A SubKernel of a root file system, started with :class:`RootfsLauncher`."""

    def __init__(
        self, loop: LoopThread, rootfs: Path, policy: SandboxPolicy, runtime_dir: Path
    ) -> None:
        super().__init__(loop, rootfs, policy, runtime_dir)
        self.launcher = RootfsLauncher(policy)
        self.start_seconds = 0.0

    def command(self) -> KernelCommand:
        return find_rootfs_kernel_command(self.env_path)

    async def _start(self) -> None:
        started = time.monotonic()
        await super()._start()
        self.start_seconds = time.monotonic() - started

    def r(self, code: str) -> str:
        """Run R ``code``; fail the test on any error; return its stdout."""
        out = self.execute(code)
        assert out.status == "ok", (out.ename, out.evalue, out.messages)
        return out.stdout
