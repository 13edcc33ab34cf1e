"""Parse a cell's leading ``#seal`` lines. Pure: text in, typed directives out.

Guix-Jupyter's ``;;guix`` lines are directives too (see :mod:`.forms`): they
parse into the ``Guix*`` subclasses of the ``#seal`` directives.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from nbseal._toml import tomllib
from nbseal.digests import sha256_hex
from nbseal.directives.forms import FORMS, GUIX_FORMS
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
    LimitDirective,
    ParsedCell,
    PinDirective,
    ScriptBlockDirective,
    ShareDirective,
)
from nbseal.errors import DirectiveError

__all__ = ["data_name_ok", "download_name", "parse_cell"]

_PREFIX = re.compile(r"^\s*#seal(?=\s|$)(.*)$")
# Guix-Jupyter's magic: ";;guix" at the start of the line, then a command.
_GUIX_PREFIX = re.compile(r"^;;guix(?=\s|$)(.*)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_OPTION = re.compile(r"^(python|kernel|pin|build)=(?!=)(.+)$")
# ``build=``: how packages without a wheel for this Python are treated.
_BUILD_MODES = ("source", "wheel")
_SCRIPT_START = re.compile(r"^# /// script\s*$")
_SCRIPT_END = re.compile(r"^# ///\s*$")


def parse_cell(text: str) -> ParsedCell:
    """Split ``text`` into its leading directives and the code that follows.

    Raises :class:`DirectiveError` for a malformed directive or a ``#seal``
    line after code; nothing else in the cell is interpreted.
    """
    lines = text.split("\n")
    directives: list[Directive] = []
    code_lines = list(lines)
    index = 0
    in_header = True
    while index < len(lines):
        line = lines[index]
        number = index + 1
        match = _PREFIX.match(line)
        guix = None if match else _GUIX_PREFIX.match(line)
        if in_header and _SCRIPT_START.match(line):
            end = _find_script_end(lines, index)
            directives.append(_parse_script_block(lines[index + 1 : end], number))
            for blank in range(index, end + 1):
                code_lines[blank] = ""
            index = end + 1
            continue
        if match or guix:
            prefix = "#seal" if match else ";;guix"
            if not in_header:
                raise DirectiveError(
                    f"{prefix} directives must come before any code in the cell",
                    line=number,
                    text=line,
                    expected="directive lines at the top of the cell",
                )
            if match:
                directives.append(_parse_directive(match.group(1), number, line))
            elif guix:
                directives.append(_parse_guix(guix.group(1), number, line))
            code_lines[index] = ""
        elif line.strip():
            in_header = False
        index += 1
    code = "\n".join(code_lines)
    return ParsedCell(tuple(directives), code if directives else text, bool(code.strip()))


def _find_script_end(lines: list[str], start: int) -> int:
    for index in range(start + 1, len(lines)):
        if _SCRIPT_END.match(lines[index]):
            return index
    raise DirectiveError(
        "the PEP 723 block is not closed",
        line=start + 1,
        text=lines[start],
        expected="a closing `# ///` line",
    )


def _parse_script_block(body: list[str], number: int) -> ScriptBlockDirective:
    toml_lines = []
    for offset, line in enumerate(body, start=1):
        if line == "#" or line.startswith("# "):
            toml_lines.append(line[2:])
        else:
            raise DirectiveError(
                "every line of a PEP 723 block must start with '# '",
                line=number + offset,
                text=line,
                expected="`# ` followed by TOML",
            )
    try:
        data = tomllib.loads("\n".join(toml_lines))
    except tomllib.TOMLDecodeError as exc:
        raise DirectiveError(
            f"the PEP 723 block is not valid TOML ({exc})",
            line=number,
            text="# /// script",
            expected="TOML such as dependencies = ['numpy']",
        ) from exc
    deps = data.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise DirectiveError(
            "dependencies must be a list of strings",
            line=number,
            text="# /// script",
            expected="dependencies = ['numpy', 'pandas>=2']",
        )
    for dep in deps:
        _check_requirement(dep, number, "# /// script")
    uv_table = data.get("tool", {}).get("uv", {})
    exclude = uv_table.get("exclude-newer")
    return ScriptBlockDirective(
        line=number,
        requirements=tuple(deps),
        requires_python=data.get("requires-python"),
        exclude_newer=_parse_instant(str(exclude), number, "# /// script")
        if exclude is not None
        else None,
    )


def _parse_directive(rest: str, number: int, line: str) -> Directive:
    try:
        words = shlex.split(rest, comments=False)
    except ValueError as exc:
        raise DirectiveError(
            f"cannot split the directive ({exc})",
            line=number,
            text=line,
            expected="words separated by spaces; quote a requirement that holds spaces",
        ) from exc
    if not words or words == ["help"]:
        return HelpDirective(number)
    verb, args = words[0], words[1:]
    if verb == "env":
        return _parse_env(args, number, line)
    if verb == "pin":
        if len(args) != 1:
            raise _error("#seal pin takes one date or instant", number, line, "pin")
        return PinDirective(number, _parse_instant(args[0], number, line))
    if verb == "data":
        return _parse_data(args, number, line)
    if verb == "describe":
        if args:
            raise _error("#seal describe takes no arguments", number, line, "describe")
        return DescribeDirective(number)
    if verb == "allow":
        if len(args) != 1 or args[0] not in ("network", "javascript"):
            raise _error("`#seal allow` takes `network` or `javascript`", number, line, "allow")
        return AllowDirective(number, args[0])
    if verb == "share":
        return _parse_share(args, number, line)
    if verb == "limit":
        return _parse_limit(args, number, line)
    known = ", ".join(sorted(FORMS))
    raise DirectiveError(
        f"unknown directive {verb!r}",
        line=number,
        text=line,
        expected=f"one of: {known} (see `#seal help`)",
    )


def _error(message: str, number: int, line: str, form: str) -> DirectiveError:
    return DirectiveError(message, line=number, text=line, expected=FORMS[form])


def _env_head(
    args: list[str], missing_name: str, fail: Callable[[str], DirectiveError]
) -> tuple[str, list[str] | None]:
    """``NAME`` or ``NAME <- WORD...`` of `#seal env` and `;;guix environment`: the
    name, and the words after ``<-`` (None for a switch)."""
    if not args:
        raise fail(missing_name)
    name = args[0]
    if not _NAME.match(name):
        raise fail(f"{name!r} is not a valid environment name")
    if len(args) == 1:
        return name, None
    if args[1] != "<-":
        raise fail("expected `<-` after the environment name")
    return name, args[2:]


def _parse_env(args: list[str], number: int, line: str) -> Directive:
    name, words = _env_head(
        args,
        "#seal env needs an environment name",
        lambda message: _error(message, number, line, "env"),
    )
    if words is None:
        return EnvSwitchDirective(number, name)
    options: dict[str, str] = {}
    requirements: list[str] = []
    for word in words:
        option = _OPTION.match(word)
        if option:
            options[option.group(1)] = option.group(2)
        else:
            _check_requirement(word, number, line)
            requirements.append(word)
    if not requirements:
        raise _error(f"environment {name!r} lists no requirements", number, line, "env")
    python = options.get("python")
    if python is not None and python != "auto" and not re.match(r"^3\.\d+(\.\d+)?$", python):
        raise _error(
            f"python={python} is not a Python version like 3.11, nor auto", number, line, "env"
        )
    build = options.get("build")
    if build is not None and build not in _BUILD_MODES:
        raise _error(f"build={build} is neither build=source nor build=wheel", number, line, "env")
    pin = options.get("pin")
    return EnvDefineDirective(
        line=number,
        name=name,
        requirements=tuple(requirements),
        python=python,
        kernel=options.get("kernel"),
        pin=_parse_instant(pin, number, line) if pin is not None else None,
        build="source" if build == "source" else None,
    )


_DEB = re.compile(r"^deb:[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$")
# A Guix package specification: NAME[@VERSION][:OUTPUT], e.g. python@3.10, glib:bin.
_GUIX_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*(@[A-Za-z0-9.+_-]+)?(:[a-z0-9_-]+)?$")
_GUIX_COMMIT = re.compile(r"^([0-9a-f]{7,40}|v\d+(\.\d+){1,2}(rc\d+)?)$")


def _check_requirement(text: str, number: int, line: str) -> None:
    if text.startswith(GUIX_REQUIREMENT_PREFIX):
        _check_guix_spec(text[len(GUIX_REQUIREMENT_PREFIX) :], number, line)
        return
    if text.startswith("deb:"):
        # A Debian package, optionally at an exact version: deb:r-base-core=4.2.2-1
        if not _DEB.match(text):
            raise DirectiveError(
                f"{text!r} is not a Debian package",
                line=number,
                text=line,
                expected="deb:NAME or deb:NAME=VERSION, e.g. deb:r-base-core",
            )
        return
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise DirectiveError(
            f"{text!r} is not a valid requirement ({exc})",
            line=number,
            text=line,
            expected="a PEP 508 requirement such as numpy==2.* or 'pandas>=2,<3'",
        ) from exc


def _parse_instant(text: str, number: int, line: str) -> str:
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            moment = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise _error(f"{value!r} is not a date or an instant", number, line, "pin") from exc
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_data(args: list[str], number: int, line: str) -> Directive:
    if len(args) != 4 or args[1] != "<-":
        raise _error("malformed data directive", number, line, "data")
    name, _, url, digest = args
    if not data_name_ok(name):
        raise _error(
            f"data name {name!r} may not start with / or hold '..' except at its start",
            number,
            line,
            "data",
        )
    if not digest.startswith("sha256"):
        raise _error(f"{digest!r} is not a SHA-256 digest", number, line, "data")
    try:
        sha256 = sha256_hex(digest)
    except ValueError as exc:
        raise _error(str(exc), number, line, "data") from exc
    return DataDirective(number, name, url, digest, sha256)


def data_name_ok(name: str) -> bool:
    """A relative path, '..' only at its start (``../styles/custom.css``), naming a file."""
    parts = name.split("/")
    ups = next((i for i, part in enumerate(parts) if part != ".."), len(parts))
    rest = parts[ups:]
    return bool(rest) and not name.startswith("/") and all(p not in ("", ".", "..") for p in rest)


def _parse_share(args: list[str], number: int, line: str) -> Directive:
    if not 1 <= len(args) <= 2:
        raise _error("#seal share takes a path and an optional mode", number, line, "share")
    mode = args[1] if len(args) == 2 else "ro"
    if mode not in {"ro", "rw"}:
        raise _error(f"mode {mode!r} is neither ro nor rw", number, line, "share")
    return ShareDirective(number, args[0], mode)


_LIMIT_VALUES = {
    "processes": re.compile(r"^\d+$"),
    "memory": re.compile(r"(?i)^\d+(\.\d+)?[KMGT]?(i?B)?$"),
    "tmp": re.compile(r"(?i)^\d+(\.\d+)?[KMGT]?(i?B)?$"),
}


def _parse_limit(args: list[str], number: int, line: str) -> Directive:
    if not args:
        raise _error("#seal limit takes at least one KEY=VALUE", number, line, "limit")
    settings: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or key not in _LIMIT_VALUES:
            known = ", ".join(_LIMIT_VALUES)
            raise _error(f"{arg!r} is not a limit (known: {known})", number, line, "limit")
        if not _LIMIT_VALUES[key].match(value):
            raise _error(f"{key}={value!r} is not a valid value", number, line, "limit")
        if key in settings:
            raise _error(f"{key} is given twice", number, line, "limit")
        settings[key] = value
    return LimitDirective(number, tuple(settings.items()))


# ---------------------------------------------------------------------------
# ;;guix lines (Guix-Jupyter)
# ---------------------------------------------------------------------------
def _guix_error(message: str, number: int, line: str, form: str) -> DirectiveError:
    return DirectiveError(message, line=number, text=line, expected=GUIX_FORMS[form])


def _parse_guix(rest: str, number: int, line: str) -> Directive:
    """One ``;;guix`` line. Words are split on white space, as Guix-Jupyter does."""
    words = rest.split()
    if not words:
        raise DirectiveError(
            ";;guix names no command",
            line=number,
            text=line,
            expected="one of: " + ", ".join(GUIX_FORMS.values()),
        )
    verb, args = words[0], words[1:]
    if verb == "environment":
        return _parse_guix_environment(args, number, line)
    if verb == "pin":
        if len(args) != 1:
            raise _guix_error(";;guix pin takes one Guix commit", number, line, "pin")
        commit = args[0]
        if not _GUIX_COMMIT.match(commit):
            raise _guix_error(f"{commit!r} is not a Guix commit", number, line, "pin")
        return GuixPinDirective(number, GUIX_PIN_PREFIX + commit, commit)
    if verb == "download":
        return _parse_guix_download(args, number, line)
    if verb == "describe":
        if args:
            raise _guix_error(";;guix describe takes no arguments", number, line, "describe")
        return GuixDescribeDirective(number)
    if verb == "search":
        raise DirectiveError(
            "nbseal does not run `;;guix search`",
            line=number,
            text=line,
            expected="`guix search REGEXP` in a terminal; in a notebook: "
            + ", ".join(GUIX_FORMS.values()),
        )
    raise DirectiveError(
        f"unknown ;;guix command {verb!r}",
        line=number,
        text=line,
        expected="one of: " + ", ".join(GUIX_FORMS.values()),
    )


def _parse_guix_environment(args: list[str], number: int, line: str) -> Directive:
    name, specs = _env_head(
        args,
        ";;guix environment needs a name",
        lambda message: _guix_error(message, number, line, "environment"),
    )
    if specs is None:
        return EnvSwitchDirective(number, name)
    if not specs:
        raise _guix_error(f"environment {name!r} lists no packages", number, line, "environment")
    for spec in specs:
        _check_guix_spec(spec, number, line)
    return GuixEnvironmentDirective(
        line=number, name=name, requirements=tuple(GUIX_REQUIREMENT_PREFIX + s for s in specs)
    )


def _check_guix_spec(spec: str, number: int, line: str) -> None:
    if not _GUIX_SPEC.match(spec):
        raise DirectiveError(
            f"{spec!r} is not a Guix package specification",
            line=number,
            text=line,
            expected="NAME, NAME@VERSION or NAME:OUTPUT, e.g. python-numpy, python@3.10",
        )


def _parse_guix_download(args: list[str], number: int, line: str) -> Directive:
    if len(args) != 2:
        raise _guix_error(";;guix download takes a URL and a hash", number, line, "download")
    url, digest = args
    try:
        sha256 = sha256_hex(digest)
    except ValueError as exc:
        raise _guix_error(str(exc), number, line, "download") from exc
    name = download_name(url)
    if name is None:
        raise _guix_error(
            f"cannot name the file {url!r} downloads: its path ends without a file name",
            number,
            line,
            "download",
        )
    return GuixDownloadDirective(number, name, url, digest, sha256)


def download_name(url: str) -> str | None:
    """The name ``;;guix download URL`` gives its file: the URL path's last segment."""
    path = urlsplit(url).path if "://" in url else url
    name = unquote(posixpath.basename(path))
    if name in {"", ".", ".."} or "/" in name or "\0" in name:
        return None
    return name
