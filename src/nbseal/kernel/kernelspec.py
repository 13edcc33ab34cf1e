"""The ``nbseal`` kernelspec: installed where Jupyter looks, or used in memory.

jupyter_client is imported only to install or remove it: ``nbseal run`` starts
the kernel from :func:`kernelspec_dict` before importing jupyter_client, and
:mod:`nbseal.runner.manager` serves it from memory.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from nbseal.notebook import DISPLAY_NAME, KERNEL_NAME

__all__ = [
    "UNSEALED_KERNEL_NAME",
    "install_kernelspec",
    "kernelspec_dict",
    "remove_kernelspec",
]

# The explicit opt-out: same kernel, no sandbox, and it says so in the launcher.
UNSEALED_KERNEL_NAME = "nbseal-unsealed"
UNSEALED_DISPLAY_NAME = "nbseal (UNSEALED: no sandbox)"


def kernelspec_dict(python: str | None = None, *, sandbox: bool = True) -> dict[str, Any]:
    argv = [python or sys.executable, "-m", "nbseal.kernel", "-f", "{connection_file}"]
    return {
        "argv": argv if sandbox else [*argv, "--no-sandbox"],
        "display_name": DISPLAY_NAME if sandbox else UNSEALED_DISPLAY_NAME,
        "language": "python",
        # Signals to the proxy would not reach kernels in a sandbox.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernelspec(
    *,
    user: bool = False,
    prefix: str | None = None,
    python: str | None = None,
    sandbox: bool = True,
) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    name = KERNEL_NAME if sandbox else UNSEALED_KERNEL_NAME
    spec = kernelspec_dict(python, sandbox=sandbox)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=1))
        return str(KernelSpecManager().install_kernel_spec(tmp, name, user=user, prefix=prefix))


def remove_kernelspec(*, sandbox: bool = True) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    name = KERNEL_NAME if sandbox else UNSEALED_KERNEL_NAME
    return str(KernelSpecManager().remove_kernel_spec(name))
