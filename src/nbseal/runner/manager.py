"""jupyter_client's manager and client, for a nbseal kernel this process started itself.

``nbseal run`` starts the kernel process before it imports jupyter_client
(:func:`nbseal.runner.start_kernel`), so that the kernel's imports and the
command's overlap. jupyter_client then takes the running process over
through its own extension point, a kernel provisioner
(:class:`StartedProvisioner`), and manages it as one it had launched:
shutdown, interrupt, and the checks that it is alive.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from jupyter_core.utils import run_sync

from nbseal.kernel.kernelspec import UNSEALED_KERNEL_NAME, kernelspec_dict
from nbseal.notebook import KERNEL_NAME

__all__ = ["InMemoryKernelSpecManager", "RunKernelManager", "StartedProvisioner", "take_over"]


class InMemoryKernelSpecManager(KernelSpecManager):
    """Finds ``nbseal`` without an installed kernelspec (used by ``nbseal run``)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name in (KERNEL_NAME, UNSEALED_KERNEL_NAME):
            sandbox = kernel_name == KERNEL_NAME
            return KernelSpec(resource_dir="", **kernelspec_dict(sandbox=sandbox))
        spec: KernelSpec = super().get_kernel_spec(kernel_name)
        return spec


class StartedProvisioner(LocalProvisioner):
    """A local provisioner whose first launch takes over a process already running.

    The connection file is the one that process was started with: it is
    neither written again (the kernel may be reading it) nor given new
    ports. A second launch (a restart) starts a process as jupyter_client's
    own provisioner does.
    """

    def __init__(self, process: subprocess.Popen[bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._running: subprocess.Popen[bytes] | None = process

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        if self._running is None:
            return await super().pre_launch(**kwargs)
        kwargs.pop("extra_arguments", None)
        assert self.parent is not None  # the manager that made it
        self.connection_info = self.parent.get_connection_info()
        # The base class only prepares the environment; LocalProvisioner's
        # own step would write the connection file again.
        return await KernelProvisionerBase.pre_launch(self, cmd=self._running.args, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        process, self._running = self._running, None
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process = process
        self.pid = process.pid
        self.pgid = process.pid  # started in a session of its own
        self.cwd = kwargs.get("cwd")
        return self.connection_info


class RunKernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the nbseal kernel is.

    jupyter_client's ``wait_for_ready`` ends by waiting for 0.2 s of silence
    on iopub, which every run paid. The nbseal kernel welcomes each iopub
    subscriber (``iopub_welcome``), so a kernel_info reply and then any iopub
    message say both channels work. What is left on iopub answers no cell's
    request, and nbclient takes only the messages of each cell's request.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # iopub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class RunKernelManager(AsyncKernelManager):
    """Manages ``nbseal`` whether or not its kernelspec is installed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_spec_manager", InMemoryKernelSpecManager())
        kwargs.setdefault("client_class", f"{__name__}.RunKernelClient")
        super().__init__(**kwargs)

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        # jupyter_client looks every 0.1 s whether the kernel has exited: on
        # average 50 ms of every run's end spent waiting for nothing.
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.01), restart)


def take_over(process: subprocess.Popen[bytes], connection_file: Path) -> RunKernelManager:
    """A manager of the nbseal kernel ``process``, started with ``connection_file``."""
    km = RunKernelManager(
        kernel_name=KERNEL_NAME, connection_file=str(connection_file), kernel_id=str(uuid.uuid4())
    )
    km.load_connection_file()
    km.provisioner = StartedProvisioner(
        process, kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km
    )
    run_sync(km.start_kernel)()
    return km
