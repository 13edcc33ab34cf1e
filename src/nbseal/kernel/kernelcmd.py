"""Find how to start the Jupyter kernel that lives inside a built environment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbseal.errors import KernelStartError

__all__ = ["KernelCommand", "command_from_spec", "find_kernel_command", "pick_kernelspec"]


@dataclass(frozen=True)
class KernelCommand:
    name: str
    argv: tuple[str, ...]  # holds "{connection_file}"
    display_name: str
    language: str
    interrupt_mode: str = "signal"
    env: dict[str, str] = field(default_factory=dict)

    def render(self, connection_file: str) -> list[str]:
        return [arg.replace("{connection_file}", connection_file) for arg in self.argv]


def _specs(env_path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(env_path.glob("share/jupyter/kernels/*/kernel.json")):
        try:
            found[spec_file.parent.name] = json.loads(spec_file.read_text())
        except (OSError, ValueError):
            continue
    return found


def find_kernel_command(env_path: Path, wanted: str | None = None) -> KernelCommand:
    """Return the kernel of the environment at ``env_path``.

    Kernelspecs installed into a venv often name ``python`` as their program;
    that would start the *caller's* interpreter, so it is rewritten to the
    environment's own.
    """
    specs = _specs(env_path)
    if not specs:
        raise KernelStartError(
            f"the environment at {env_path} holds no Jupyter kernel",
            hint="add a kernel package to the environment (ipykernel, bash_kernel, ...)",
        )
    name, spec, argv = pick_kernelspec(specs, wanted)
    if Path(argv[0]).name in {"python", "python3", "python3.exe"} or argv[0] == "{python}":
        argv[0] = str(env_path / "bin" / "python")
    if name == "python3" and "ipykernel_launcher" in argv:
        # ipykernel answers interrupt_request; signals cannot cross a sandbox.
        interrupt_mode = "message"
    else:
        interrupt_mode = str(spec.get("interrupt_mode", "signal"))
    return command_from_spec(name, spec, argv, interrupt_mode)


def pick_kernelspec(
    specs: dict[str, dict[str, Any]], wanted: str | None
) -> tuple[str, dict[str, Any], list[str]]:
    """The kernelspec ``kernel=wanted`` names (python3 first by default), and its argv."""
    if wanted is None:
        name = "python3" if "python3" in specs else next(iter(sorted(specs)))
    elif wanted in specs:
        name = wanted
    else:
        raise KernelStartError(
            f"the environment holds no kernel named {wanted!r}",
            context=f"kernels found: {', '.join(sorted(specs))}",
            hint="use kernel=NAME with one of those names",
        )
    spec = specs[name]
    argv = [str(a) for a in spec.get("argv", [])]
    if not argv:
        raise KernelStartError(f"the kernelspec {name!r} has an empty argv")
    return name, spec, argv


def command_from_spec(
    name: str, spec: dict[str, Any], argv: list[str], interrupt_mode: str | None = None
) -> KernelCommand:
    return KernelCommand(
        name=name,
        argv=tuple(argv),
        display_name=str(spec.get("display_name", name)),
        language=str(spec.get("language", "")),
        interrupt_mode=interrupt_mode or str(spec.get("interrupt_mode", "signal")),
        env={str(k): str(v) for k, v in spec.get("env", {}).items()},
    )
