"""Sandbox start-up cost: the same ipykernel started directly and under bwrap.

Both kernels come from nbseal's default environment and are started the way
the proxy starts them (a SubKernel over ipc sockets), in the same run, so the
ratio isolates the sandbox. Each start is timed until the kernel has answered
kernel_info and its iopub delivers; prints the median and spread per launcher.

    python bench/bench_sandbox.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import zmq.asyncio

from nbseal.backends.kernelspecs import find_kernel_command
from nbseal.environments import realize
from nbseal.kernel.session import WireSession
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.wire import RawMessage
from nbseal.plan import default_environment
from nbseal.progress import Progress
from nbseal.sandbox import BwrapLauncher, SandboxPolicy, check_sandbox, find_bwrap
from nbseal.sandbox.launch import DirectLauncher, Launcher
from nbseal.store import EnvironmentStore


def _ignore(kernel: SubKernel, channel: str, message: RawMessage) -> None:
    pass


async def start_times(
    env_path: Path, launcher: Launcher, workdir: Path, rounds: int
) -> list[float]:
    session = WireSession(key=uuid.uuid4().hex.encode())
    context = zmq.asyncio.Context()
    runtime = Path(tempfile.mkdtemp(prefix="nbseal-"))
    command = find_kernel_command(env_path)
    times = []
    try:
        for index in range(rounds + 1):  # the first start warms the page cache
            kernel = SubKernel(
                env_name="bench",
                command=command,
                env_path=env_path,
                session=session,
                context=context,
                runtime_dir=runtime,
                workdir=workdir,
                launcher=launcher,
                handler=_ignore,
                index=index,
            )
            started = time.perf_counter()
            await kernel.start()
            elapsed = time.perf_counter() - started
            await kernel.shutdown(grace=2.0)
            if index:
                times.append(elapsed)
    finally:
        context.destroy(linger=0)
        shutil.rmtree(runtime, ignore_errors=True)
    return times


def bare_bwrap_ms(rounds: int) -> float:
    """``bwrap ... true``: the namespaces and mounts alone, without a kernel."""
    argv = [find_bwrap(), "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr"]
    argv += ["--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"]
    argv += ["--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "true"]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    check_sandbox()
    built = asyncio.run(realize(default_environment(), EnvironmentStore(), Progress("default")))
    workdir = Path(tempfile.mkdtemp(prefix="nbseal-bench-"))
    try:
        direct = asyncio.run(start_times(built.path, DirectLauncher(), workdir, args.rounds))
        sealed = asyncio.run(
            start_times(
                built.path, BwrapLauncher(SandboxPolicy(workdir=workdir)), workdir, args.rounds
            )
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"kernel start to kernel_info reply, {args.rounds} starts each (bwrap: {find_bwrap()})")
    print(f"{'launcher':<10}{'median':>10}{'min':>10}{'max':>10}")
    for name, times in (("direct", direct), ("bwrap", sealed)):
        print(
            f"{name:<10}{1000 * statistics.median(times):>8.0f}ms"
            f"{1000 * min(times):>8.0f}ms{1000 * max(times):>8.0f}ms"
        )
    d, s = statistics.median(direct), statistics.median(sealed)
    print(f"sandboxed / direct: {s / d:.2f}x ({1000 * (s - d):+.0f} ms)")
    print(f"bare `bwrap --unshare-all ... true`: {bare_bwrap_ms(args.rounds):.1f} ms median")


if __name__ == "__main__":
    main()
