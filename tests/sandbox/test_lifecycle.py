"""Sealed kernels start, interrupt and die as the proxy expects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from nbseal.sandbox import SandboxPolicy
from tests.sandbox.helpers import SealedKernel, processes_mentioning, wait_until

Start = Callable[[SandboxPolicy], SealedKernel]


def test_launcher_is_sealed(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    assert kernel.launcher.sealed is True
    assert kernel.sub.kernel_info["language_info"]["name"] == "python"


def test_interrupt_request_stops_a_running_cell(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    assert kernel.sub.command.interrupt_mode == "message"
    out = kernel.execute_interrupted("import time\ntime.sleep(30)", "message")
    assert (out.status, out.ename) == ("error", "KeyboardInterrupt")
    assert kernel.value("40 + 2") == "42"


def test_sigint_to_the_kernel_pid_interrupts(start_sealed: Start, workdir: Path) -> None:
    """Kernels interrupted by signal need the kernel's own pid, not bwrap's."""
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    pid = kernel.kernel_pid()
    assert pid is not None
    assert pid != kernel.bwrap_pid
    assert str(kernel.connection_file) in Path(f"/proc/{pid}/cmdline").read_text()
    out = kernel.execute_interrupted("import time\ntime.sleep(30)", "signal")
    assert (out.status, out.ename) == ("error", "KeyboardInterrupt")
    assert kernel.value("40 + 2") == "42"


def test_kernel_pid_is_the_kernel_s_even_beside_orphans(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    # The shell exits at once; its sleep is re-parented to the sandbox's pid 1.
    kernel.execute("import subprocess\nsubprocess.run(['/bin/sh', '-c', 'sleep 60 & echo'])")
    parents = kernel.value(
        "[open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1]"
        " for p in _os.listdir('/proc') if p.isdigit() and int(p) > 2]"
    )
    assert parents == "['1']"  # one orphan, child of the sandbox's pid 1
    pid = kernel.kernel_pid()
    assert pid is not None
    assert str(kernel.connection_file) in Path(f"/proc/{pid}/cmdline").read_text()


def test_sigint_to_bwrap_kills_the_kernel(start_sealed: Start, workdir: Path) -> None:
    """Why signal-mode interrupts must not go to the launched process's pid."""
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    marker = str(kernel.connection_file)
    assert len(processes_mentioning(marker)) == 3  # bwrap, its reaper, the kernel
    os.kill(kernel.bwrap_pid, signal.SIGINT)
    assert wait_until(lambda: not processes_mentioning(marker))
    assert kernel.wait_exit() == -signal.SIGINT
    assert kernel.kernel_pid() is None


def test_killing_bwrap_leaves_no_kernel(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    marker = str(kernel.connection_file)
    kernel_pid = kernel.kernel_pid()
    assert kernel_pid in processes_mentioning(marker)
    os.kill(kernel.bwrap_pid, signal.SIGKILL)
    assert wait_until(lambda: not processes_mentioning(marker))


def test_kernel_dies_with_the_process_that_launched_it(
    default_env: Path, workdir: Path, tmp_path: Path
) -> None:
    """A proxy killed with SIGKILL leaves nothing behind (--die-with-parent)."""
    marker = f"nbseal-orphan-check-{os.getpid()}"
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from pathlib import Path
        from nbseal.sandbox.launch import LaunchRequest
        from nbseal.sandbox import BwrapLauncher, SandboxPolicy

        async def main():
            env = Path({str(default_env)!r})
            launcher = BwrapLauncher(SandboxPolicy(workdir=Path({str(workdir)!r})))
            request = LaunchRequest(
                [str(env / "bin" / "python"), "-c", "import time; time.sleep(300)", {marker!r}],
                env={{}}, cwd=Path("/"), env_path=env,
                socket_dir=Path({str(tmp_path)!r}), log_path=Path({str(tmp_path / "log")!r}),
            )
            process = await launcher.launch(request)
            while launcher.kernel_pid(process) is None:
                await asyncio.sleep(0.05)
            print(launcher.kernel_pid(process), flush=True)
            await asyncio.sleep(300)

        asyncio.run(main())
        """
    )
    proxy = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        kernel_pid = int(proxy.stdout.readline())
        assert kernel_pid in processes_mentioning(marker)
    finally:
        proxy.kill()
        proxy.wait()
    try:
        assert wait_until(lambda: not processes_mentioning(marker))
    finally:
        for pid in processes_mentioning(marker):
            os.kill(pid, signal.SIGKILL)


def test_kernel_exit_status_passes_through_bwrap(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    kernel.execute_nowait("import os\nos._exit(3)")
    assert kernel.wait_exit() == 3
