"""Find how to start the Jupyter kernel that lives inside a built environment.

Every backend's environment holds kernelspecs (``kernels/NAME/kernel.json``)
somewhere: a venv's ``share/jupyter/kernels``, a root file system's
``/usr/local`` and ``/usr`` ones, a Guix profile's. :func:`read_kernelspecs`
reads them; :func:`pick_kernelspec` and :func:`command_from_spec` turn one into
the :class:`KernelCommand` a launcher starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbseal.errors import KernelStartError

__all__ = [
    "PREFIX_KERNEL_DIR",
    "TCP_ONLY_MODULES",
    "TCP_ONLY_PROGRAMS",
    "KernelCommand",
    "Transport",
    "command_from_spec",
    "find_kernel_command",
    "is_xeus_python",
    "kernel_transport",
    "kernelspec_files",
    "pick_kernelspec",
    "prefix_kernelspecs",
    "read_kernelspecs",
]

Transport = Literal["ipc", "tcp"]

# Kernels that cannot bind ipc sockets: the xeus family. xeus builds each
# endpoint as "transport://ip:port", which is not an ipc path, so these kernels
# get a TCP connection file and run behind nbseal/sandbox/tcp_relay.py. Known
# by the program a kernelspec starts (conda-forge's xeus kernels) or, for
# xeus-python from PyPI (``python -m xpython_launcher``), by the module.
TCP_ONLY_PROGRAMS = frozenset(
    {"xpython", "xcpp", "xr", "xlua", "xsql", "xsqlite", "xoctave", "xrobot", "xhaskell"}
)
TCP_ONLY_MODULES = frozenset({"xpython_launcher"})
_PYTHON_NAMES = re.compile(r"python(3(\.\d+)?)?")


def _module_of(argv: tuple[str, ...] | list[str]) -> str | None:
    """``MODULE`` of ``PYTHON -m MODULE ...``."""
    if len(argv) >= 3 and argv[1] == "-m":
        return argv[2]
    return None


def kernel_transport(argv: tuple[str, ...] | list[str]) -> Transport:
    """How nbseal reaches the kernel ``argv`` starts: the one rule for it.

    "ipc" (a socket file in a directory bound into the sandbox) for every
    kernel except the TCP-only ones above, which are reached through the relay.
    """
    if Path(argv[0]).name in TCP_ONLY_PROGRAMS or _module_of(argv) in TCP_ONLY_MODULES:
        return "tcp"
    return "ipc"


def is_xeus_python(argv: tuple[str, ...] | list[str]) -> bool:
    """xeus-python started as a Python module: it exits on SIGINT and ignores
    interrupt_request, so the relay raises KeyboardInterrupt in it instead."""
    return _module_of(argv) == "xpython_launcher"


@dataclass(frozen=True)
class KernelCommand:
    name: str
    argv: tuple[str, ...]  # holds "{connection_file}"
    display_name: str
    language: str
    interrupt_mode: str = "signal"
    env: dict[str, str] = field(default_factory=dict)
    # "tcp": the kernel binds only TCP and runs behind the relay, which
    # ``relay_python`` (an interpreter of the environment) runs.
    transport: Transport = "ipc"
    relay_python: str = ""
    xeus_python: bool = False

    def render(self, connection_file: str) -> list[str]:
        return [arg.replace("{connection_file}", connection_file) for arg in self.argv]


# Where a prefix (a venv, a Guix profile) holds its kernelspecs.
PREFIX_KERNEL_DIR = "share/jupyter/kernels"


def prefix_kernelspecs(prefix: Path) -> dict[str, dict[str, Any]]:
    """The kernelspecs of a prefix (a venv, a Guix profile) by name."""
    return read_kernelspecs(prefix / PREFIX_KERNEL_DIR)


def kernelspec_files(*kernel_dirs: Path) -> list[Path]:
    """The ``NAME/kernel.json`` files in ``kernel_dirs``, folder by folder, by name."""
    found: list[Path] = []
    for kernel_dir in kernel_dirs:
        found += sorted(kernel_dir.glob("*/kernel.json"))
    return found


def read_kernelspecs(*kernel_dirs: Path) -> dict[str, dict[str, Any]]:
    """The kernelspecs in ``kernel_dirs`` by name; an earlier folder wins, as in Jupyter.

    A ``kernel.json`` that cannot be read or parsed is left out.
    """
    found: dict[str, dict[str, Any]] = {}
    for spec_file in kernelspec_files(*kernel_dirs):
        name = spec_file.parent.name
        if name in found:
            continue
        try:
            found[name] = json.loads(spec_file.read_text())
        except (OSError, ValueError):
            continue
    return found


def find_kernel_command(env_path: Path, wanted: str | None = None) -> KernelCommand:
    """Return the kernel of the environment at ``env_path``.

    Kernelspecs installed into a venv often name ``python`` as their program;
    that would start the *caller's* interpreter, so it is rewritten to the
    environment's own.
    """
    specs = prefix_kernelspecs(env_path)
    if not specs:
        raise KernelStartError.no_kernel(
            env_path, hint="add a kernel package to the environment (ipykernel, bash_kernel, ...)"
        )
    name, spec, argv = pick_kernelspec(specs, wanted)
    python = str(env_path / "bin" / "python")
    # python, python3, python3.11 (xeus-python's spec): unsealed, PATH is the host's.
    if _PYTHON_NAMES.fullmatch(Path(argv[0]).name) or argv[0] == "{python}":
        argv[0] = python
    if name == "python3" and "ipykernel_launcher" in argv:
        # ipykernel answers interrupt_request; signals cannot cross a sandbox.
        interrupt_mode = "message"
    else:
        interrupt_mode = str(spec.get("interrupt_mode", "signal"))
    return command_from_spec(name, spec, argv, interrupt_mode, relay_python=python)


def pick_kernelspec(
    specs: dict[str, dict[str, Any]], wanted: str | None
) -> tuple[str, dict[str, Any], list[str]]:
    """The kernelspec ``kernel=wanted`` names, and its argv.

    Without ``kernel=``, an environment's one kernel beside Python's is the
    one meant (``#seal env scm <- calysto_scheme`` runs Scheme, though
    ipykernel comes with it); several are an error that lists them; with
    none, Python's (python3) runs.
    """
    if wanted is None:
        others = sorted(n for n in specs if n != "python3")
        if len(others) > 1:
            raise KernelStartError.several_kernels(others)
        name = others[0] if others else "python3"
    elif wanted in specs:
        name = wanted
    else:
        raise KernelStartError.no_kernel_named(wanted, specs)
    spec = specs[name]
    argv = [str(a) for a in spec.get("argv", [])]
    if not argv:
        raise KernelStartError.empty_argv(name)
    return name, spec, argv


def command_from_spec(
    name: str,
    spec: dict[str, Any],
    argv: list[str],
    interrupt_mode: str | None = None,
    *,
    relay_python: str | None = None,
) -> KernelCommand:
    """The command of kernelspec ``name``; ``relay_python`` runs the relay a TCP kernel needs."""
    transport = kernel_transport(argv)
    if transport == "tcp" and not relay_python:
        raise KernelStartError.relay_needs_python(name, argv)
    return KernelCommand(
        name=name,
        argv=tuple(argv),
        display_name=str(spec.get("display_name", name)),
        language=str(spec.get("language", "")),
        interrupt_mode=interrupt_mode or str(spec.get("interrupt_mode", "signal")),
        env={str(k): str(v) for k, v in spec.get("env", {}).items()},
        transport=transport,
        relay_python=(relay_python or "") if transport == "tcp" else "",
        xeus_python=transport == "tcp" and is_xeus_python(argv),
    )
