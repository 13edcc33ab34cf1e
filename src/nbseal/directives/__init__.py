"""``#seal`` directives: a pure parser from cell text to typed directives."""

from nbseal.directives.model import (
    AllowDirective,
    DataDirective,
    DescribeDirective,
    Directive,
    EnvDefineDirective,
    EnvSwitchDirective,
    HelpDirective,
    ParsedCell,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
)
from nbseal.directives.parser import HELP_TEXT, parse_cell

__all__ = [
    "HELP_TEXT",
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
    "parse_cell",
]
