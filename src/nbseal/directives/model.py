"""Typed directives: what a ``#seal`` line means, independent of where it came from.

Guix-Jupyter's ``;;guix`` lines parse into subclasses of the ``#seal`` ones
(an environment, a pin, data, describe), so everything that applies a
``#seal`` directive applies its ``;;guix`` twin too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEB_REQUIREMENT_PREFIX",
    "GUIX_PIN_PREFIX",
    "GUIX_REQUIREMENT_PREFIX",
    "AllowDirective",
    "DataDirective",
    "DescribeDirective",
    "Directive",
    "EnvDefineDirective",
    "EnvSwitchDirective",
    "GuixDescribeDirective",
    "GuixDownloadDirective",
    "GuixEnvironmentDirective",
    "GuixPinDirective",
    "HelpDirective",
    "LimitDirective",
    "ParsedCell",
    "PinDirective",
    "ScriptBlockDirective",
    "ShareDirective",
]


@dataclass(frozen=True)
class EnvDefineDirective:
    line: int
    name: str
    requirements: tuple[str, ...]
    python: str | None = None
    kernel: str | None = None
    pin: str | None = None
    # ``build=source``: keep the pin's versions and compile what has no wheel.
    build: str | None = None


@dataclass(frozen=True)
class EnvSwitchDirective:
    line: int
    name: str


@dataclass(frozen=True)
class PinDirective:
    line: int
    instant: str  # RFC 3339, UTC


@dataclass(frozen=True)
class DataDirective:
    line: int
    name: str
    url: str
    digest: str  # as written
    sha256: str = ""  # the same, as lowercase hex


@dataclass(frozen=True)
class DescribeDirective:
    line: int


@dataclass(frozen=True)
class HelpDirective:
    line: int


@dataclass(frozen=True)
class AllowDirective:
    line: int
    what: str


@dataclass(frozen=True)
class ShareDirective:
    line: int
    path: str
    mode: str  # "ro" or "rw"


@dataclass(frozen=True)
class LimitDirective:
    """``#seal limit processes=N memory=SIZE tmp=SIZE`` (any of them)."""

    line: int
    settings: tuple[tuple[str, str], ...]  # (key, value) as written


@dataclass(frozen=True)
class ScriptBlockDirective:
    """A PEP 723 ``# /// script`` block: the default Python environment."""

    line: int
    requirements: tuple[str, ...]
    requires_python: str | None = None
    exclude_newer: str | None = None


Directive = (
    EnvDefineDirective
    | EnvSwitchDirective
    | PinDirective
    | DataDirective
    | DescribeDirective
    | HelpDirective
    | AllowDirective
    | ShareDirective
    | LimitDirective
    | ScriptBlockDirective
)


# A Debian package: ``deb:r-base-core`` or ``deb:NAME=VERSION``.
DEB_REQUIREMENT_PREFIX = "deb:"
# A Guix package inside nbseal: ``guix:python-numpy@1.26``, beside ``deb:NAME``.
GUIX_REQUIREMENT_PREFIX = "guix:"
# A Guix pin as a pin string: ``guix-commit:COMMIT`` (a date pin is an instant).
GUIX_PIN_PREFIX = "guix-commit:"


@dataclass(frozen=True)
class GuixEnvironmentDirective(EnvDefineDirective):
    """``;;guix environment NAME <- SPEC...``; ``requirements`` are ``guix:SPEC``."""


@dataclass(frozen=True)
class GuixPinDirective(PinDirective):
    """``;;guix pin COMMIT``: later Guix environments use Guix at ``commit``.

    ``instant`` holds the pin as a pin string, ``guix-commit:COMMIT``; see
    :func:`nbseal.plan.notebook_pin_after` for how it sits beside a date pin.
    """

    commit: str = ""


@dataclass(frozen=True)
class GuixDownloadDirective(DataDirective):
    """``;;guix download URL HASH``: data named after the last segment of ``url``."""


@dataclass(frozen=True)
class GuixDescribeDirective(DescribeDirective):
    """``;;guix describe``: nbseal's description of the notebook's environments."""


@dataclass(frozen=True)
class ParsedCell:
    directives: tuple[Directive, ...] = ()
    # The cell's code with directive lines blanked, so line numbers still match.
    code: str = ""
    has_code: bool = field(default=False)
