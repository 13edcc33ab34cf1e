from __future__ import annotations

import pytest

from nbseal.directives import (
    DataDirective,
    DescribeDirective,
    EnvDefineDirective,
    EnvSwitchDirective,
    HelpDirective,
    LimitDirective,
    PinDirective,
    ScriptBlockDirective,
    parse_cell,
)
from nbseal.errors import DirectiveError


def test_plain_code_is_untouched() -> None:
    cell = parse_cell("x = 1\nprint(x)")
    assert cell.directives == ()
    assert cell.code == "x = 1\nprint(x)"
    assert cell.has_code


def test_directive_lines_are_blanked_so_line_numbers_survive() -> None:
    cell = parse_cell("#seal pin 2025-06-01\n#seal env py <- numpy==2.*\nimport numpy")
    assert cell.directives == (
        PinDirective(1, "2025-06-01T00:00:00Z"),
        EnvDefineDirective(2, "py", ("numpy==2.*",)),
    )
    assert cell.code == "\n\nimport numpy"


def test_env_options_and_quoted_requirements() -> None:
    (env,) = parse_cell(
        "#seal env r <- 'pandas>=2, <3' python=3.11 kernel=python3 pin=2024-01-02T03:04:05+01:00"
    ).directives
    assert env == EnvDefineDirective(
        1, "r", ("pandas>=2, <3",), "3.11", "python3", "2024-01-02T02:04:05Z"
    )


def test_switch_describe_help() -> None:
    cell = parse_cell("#seal env py\n#seal describe\n#seal\n#seal help")
    assert cell.directives == (
        EnvSwitchDirective(1, "py"),
        DescribeDirective(2),
        HelpDirective(3),
        HelpDirective(4),
    )
    assert not cell.has_code


def test_pep723_block() -> None:
    text = (
        "# /// script\n"
        '# requires-python = ">=3.10"\n'
        '# dependencies = ["numpy", "pandas>=2"]\n'
        "# [tool.uv]\n"
        '# exclude-newer = "2025-01-01T00:00:00Z"\n'
        "# ///\n"
        "import numpy"
    )
    cell = parse_cell(text)
    assert cell.directives == (
        ScriptBlockDirective(1, ("numpy", "pandas>=2"), ">=3.10", "2025-01-01T00:00:00Z"),
    )
    assert cell.code.splitlines()[-1] == "import numpy"
    assert cell.code.count("\n") == text.count("\n")


def test_limit_settings_as_written() -> None:
    (directive,) = parse_cell("#seal limit memory=16G processes=4096 tmp=512M").directives
    assert directive == LimitDirective(
        1, (("memory", "16G"), ("processes", "4096"), ("tmp", "512M"))
    )


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("#seal bogus", 1, "unknown directive 'bogus'"),
        ("#seal env", 1, "needs an environment name"),
        ("#seal env 9x <- numpy", 1, "not a valid environment name"),
        ("#seal env py numpy", 1, "expected `<-`"),
        ("#seal env py <-", 1, "lists no requirements"),
        ("\n#seal env py <- num$py", 2, "not a valid requirement"),
        ("#seal pin yesterday", 1, "not a date"),
        ("#seal pin", 1, "one date"),
        ("#seal data x <- http://h/x sha256:abc", 1, "not a SHA-256"),
        ("#seal data a/../x <- http://h/x sha256:" + "0" * 64, 1, "may not start with / or"),
        ("#seal data /x <- http://h/x sha256:" + "0" * 64, 1, "may not start with / or"),
        ("#seal data .. <- http://h/x sha256:" + "0" * 64, 1, "may not start with / or"),
        ("#seal share /x rx", 1, "neither ro nor rw"),
        ("#seal allow everything", 1, "allow network"),
        ("#seal limit", 1, "at least one KEY=VALUE"),
        ("#seal limit cpu=2", 1, "'cpu=2' is not a limit"),
        ("#seal limit memory", 1, "'memory' is not a limit"),
        ("#seal limit memory=lots", 1, "memory='lots' is not a valid value"),
        ("#seal limit processes=1.5", 1, "processes='1.5' is not a valid value"),
        ("#seal limit tmp=1G tmp=2G", 1, "tmp is given twice"),
        ("x = 1\n#seal describe", 2, "before any code"),
        ("# /// script\n# dependencies = [1]\n# ///", 1, "list of strings"),
        ("# /// script\n# dependencies = []", 1, "not closed"),
    ],
)
def test_malformed_directives_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_cell(text)
    assert info.value.line == line
    assert fragment in str(info.value)
    assert info.value.hint.startswith("expected")
    assert isinstance(info.value, ValueError)


def test_a_data_name_may_climb_out_of_the_working_directory_at_its_start() -> None:
    """``../styles/custom.css``: where a notebook in a subfolder looks for it."""
    (directive,) = parse_cell(
        "#seal data ../styles/custom.css <- x.css sha256:" + "0" * 64
    ).directives
    assert isinstance(directive, DataDirective)
    assert directive.name == "../styles/custom.css"
