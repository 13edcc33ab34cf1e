"""``#seal`` (and ``;;guix``) directives: a pure parser from cell text to typed directives."""

from nbseal.directives.model import (
    GUIX_PIN_PREFIX,
    GUIX_REQUIREMENT_PREFIX,
    AllowDirective,
    DataDirective,
    DescribeDirective,
    Directive,
    EnvDefineDirective,
    EnvSwitchDirective,
    GuixDescribeDirective,
    GuixDownloadDirective,
    GuixEnvironmentDirective,
    GuixPinDirective,
    HelpDirective,
    ParsedCell,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
)
from nbseal.directives.parser import HELP_TEXT, parse_cell

__all__ = [
    "GUIX_PIN_PREFIX",
    "GUIX_REQUIREMENT_PREFIX",
    "HELP_TEXT",
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
    "ParsedCell",
    "PinDirective",
    "ScriptBlockDirective",
    "ShareDirective",
    "parse_cell",
]
