"""A notebook's environments: what each declares, before anything is resolved.

Issue-level scope today: the default Python environment that holds only
ipykernel, pinned by nbseal. Declared environments plug in here.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import sysconfig
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_ENV_NAME",
    "DEFAULT_IPYKERNEL",
    "DEFAULT_PIN",
    "EnvironmentSpec",
    "default_environment",
    "host_platform",
    "host_python",
]

DEFAULT_ENV_NAME = "default"
# The kernel of the default environment, and the instant its dependencies
# are resolved at: both fixed by nbseal, so the default is reproducible too.
DEFAULT_IPYKERNEL = "ipykernel==7.4.0"
DEFAULT_PIN = "2026-11-01T00:00:00Z"


def host_python() -> str:
    """The interpreter environments are built on (uv cannot download one here)."""
    return sys.executable


def host_python_version() -> str:
    return platform.python_version()


def host_platform() -> str:
    return sysconfig.get_platform()


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    requirements: tuple[str, ...]
    pin: str
    python: str = field(default_factory=host_python)
    kernel: str | None = None

    def resolution_key(self, python_version: str, platform_tag: str) -> str:
        """Identifies a resolution: same inputs at the same pin give the same lock."""
        digest = hashlib.sha256()
        for part in (*sorted(self.requirements), self.pin, python_version, platform_tag):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]


def default_environment() -> EnvironmentSpec:
    return EnvironmentSpec(
        name=DEFAULT_ENV_NAME,
        requirements=(DEFAULT_IPYKERNEL,),
        pin=DEFAULT_PIN,
    )
