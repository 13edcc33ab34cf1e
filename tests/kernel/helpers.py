"""A small client for driving a real kernel in tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

# /root is in the sandbox, traversable only, when the environments' base
# Python lives under it (pyenv's, run as root); otherwise it is not there at all.
BASE_PYTHON_UNDER_ROOT = (
    Path(os.environ.get("NBSEAL_PYTHON") or sys.executable).resolve().is_relative_to("/root")
)


@dataclass
class Result:
    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    # iopub messages seen meanwhile with another parent (or none).
    others: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.outputs
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.outputs if m["msg_type"] == msg_type]


def collect(kc: BlockingKernelClient, msg_id: str, timeout: float = 60) -> Result:
    outputs, others = [], []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            others.append(msg)
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                break
            continue
        outputs.append(msg)
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        # A late kernel_info_reply of wait_for_ready's probing may come first.
        if reply["parent_header"].get("msg_id") == msg_id:
            return Result(reply, outputs, others)


def execute(kc: BlockingKernelClient, code: str, timeout: float = 60, **kw: Any) -> Result:
    return collect(kc, kc.execute(code, **kw), timeout)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False


def host_pid_of_kernel(kc: BlockingKernelClient) -> int:
    """The host pid of the sub-kernel answering ``kc``.

    Inside the sandbox the kernel sees its own pid namespace, so it prints
    its connection file instead, and the host process is found by that.
    """
    result = execute(kc, "import sys; print(sys.argv[sys.argv.index('-f') + 1])")
    connection_file = result.stdout.strip()
    assert connection_file, result.reply["content"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            connection_file.encode() in argv
            and b"bwrap" not in Path(argv[0].decode()).name.encode()
        ):
            return int(entry.name)
    raise AssertionError(f"no host process holds {connection_file}")


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def start(kernel_name: str = "nbseal") -> tuple[KernelManager, BlockingKernelClient]:
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


@contextmanager
def running_kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """An nbseal kernel for the block; shut down (if still alive) afterwards."""
    km, kc = start()
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=False)


def start_busy_loop(kc: BlockingKernelClient) -> str:
    """Start a cell that loops forever; return once it runs in the kernel (not while prepared)."""
    msg_id = kc.execute("print('looping', flush=True)\nwhile True: pass")
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["msg_type"] == "stream" and "looping" in msg["content"]["text"]:
            return str(msg_id)
