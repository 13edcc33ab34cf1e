"""``#seal`` (and ``;;guix``) directives: a pure parser from cell text to typed directives."""

from nbseal.directives.forms import HELP_TEXT
from nbseal.directives.model import (
    DEB_REQUIREMENT_PREFIX,
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
    LimitDirective,
    ParsedCell,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
)
from nbseal.directives.parser import parse_cell

__all__ = [
    "DEB_REQUIREMENT_PREFIX",
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
    "LimitDirective",
    "ParsedCell",
    "PinDirective",
    "ScriptBlockDirective",
    "ShareDirective",
    "parse_cell",
]
