"""The ``nbseal`` kernelspec: install it where Jupyter looks, or use it in memory."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

__all__ = [
    "KERNEL_NAME",
    "InMemoryKernelSpecManager",
    "install_kernelspec",
    "kernelspec_dict",
    "remove_kernelspec",
]

KERNEL_NAME = "nbseal"
DISPLAY_NAME = "nbseal (reproducible)"


def kernelspec_dict(python: str | None = None) -> dict[str, Any]:
    return {
        "argv": [python or sys.executable, "-m", "nbseal.kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        # Signals to the proxy would not reach kernels in a sandbox.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernelspec(
    *, user: bool = False, prefix: str | None = None, python: str | None = None
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernelspec_dict(python), indent=1))
        return str(
            KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user, prefix=prefix)
        )


def remove_kernelspec() -> str:
    return str(KernelSpecManager().remove_kernel_spec(KERNEL_NAME))


class InMemoryKernelSpecManager(KernelSpecManager):
    """Finds ``nbseal`` without an installed kernelspec (used by ``nbseal run``)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == KERNEL_NAME:
            return KernelSpec(resource_dir="", **kernelspec_dict())
        spec: KernelSpec = super().get_kernel_spec(kernel_name)
        return spec
