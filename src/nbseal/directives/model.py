"""Typed directives: what a ``#seal`` line means, independent of where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AllowDirective",
    "DataDirective",
    "DescribeDirective",
    "Directive",
    "EnvDefineDirective",
    "EnvSwitchDirective",
    "HelpDirective",
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
    | ScriptBlockDirective
)


@dataclass(frozen=True)
class ParsedCell:
    directives: tuple[Directive, ...] = ()
    # The cell's code with directive lines blanked, so line numbers still match.
    code: str = ""
    has_code: bool = field(default=False)
