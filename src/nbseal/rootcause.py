"""The root cause of a failed resolution or build, in one or two lines, from what uv said.

uv explains a failure as a chain: a headline (``error: Failed to build
`numpy==1.14.5```, or ``\u00d7 ...`` in uv before 0.6), then ever more specific
causes (``cause:``, ``Caused by:``, ``├─▶``, ``╰─▶``), sometimes the build's own
output (``[stderr]``) and a ``hint:``. The root cause is the headline with the
most specific cause: the last exception the build printed, else the last link
of the chain; the hint's first sentences follow on a second line. Pure: text in,
text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["root_cause"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A link of the chain, in both of uv's forms; group 1 is its text.
_LINK = re.compile(r"^\s{0,2}(?:error|cause|Caused by|\u00d7|├─▶|╰─▶)\s*:?\s*(.*)$")
_HINT = re.compile(r"^\s*hint:\s*(.*)$")
# A line of the build's output that names an exception: "ModuleNotFoundError: No module ...".
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b:?.*$")
# uv's verdict around a resolver's reason: the reason is what matters.
_BECAUSE = re.compile(
    r"^Because (.*?),? we can conclude that (?:your|the) requirements are unsatisfiable\.?$"
)
_LONGEST = 300


@dataclass
class _Told:
    """What uv's stderr holds, by part."""

    chain: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)  # the build's own stderr/stdout
    hints: list[str] = field(default_factory=list)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _read(text: str) -> _Told:
    told = _Told()
    part = ""  # "chain" | "output" | "hint" while a part continues on the next line
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).replace("\r", "").rstrip()
        stripped = line.strip()
        hint = _HINT.match(line)
        if hint:
            told.hints.append(hint.group(1))
            part = "hint"
            continue
        if stripped in ("[stderr]", "[stdout]"):
            part = "output"
            continue
        link = _LINK.match(line) if part != "output" or _indent(line) <= 2 else None
        if link and stripped:
            told.chain.append(link.group(1).rstrip(":"))
            part = "chain"
        elif not stripped:
            part = "" if part != "output" else part
        elif part == "output":
            told.output.append(stripped)
        elif part == "chain":
            told.chain[-1] += " " + stripped  # uv 0.5 wraps long links
        elif part == "hint":
            told.hints[-1] += " " + stripped
    return told


def _reason(link: str) -> str:
    """A resolver's verdict without its boilerplate."""
    because = _BECAUSE.match(link)
    return because.group(1) if because else link


def _sentences(text: str, limit: int = 2) -> str:
    parts = re.split(r"(?<=\.)\s+(?=[A-Z`])", text.strip())
    return " ".join(parts[:limit])


def _shorten(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"


def root_cause(stderr: str) -> str:
    """One line of cause, and a second of uv's hint when it gave one; "" when uv said nothing."""
    told = _read(stderr)
    lines = [_ANSI.sub("", line).strip() for line in stderr.splitlines()]
    if told.chain:
        exceptions = [line for line in told.output if _EXCEPTION.match(line)]
    else:  # only the end of what uv said (a tail): the build's output, unmarked
        exceptions = [line for line in lines if _EXCEPTION.match(line)]
    if exceptions:
        specific = exceptions[-1]
    elif len(told.chain) > 1:
        specific = _reason(told.chain[-1])
    else:
        specific = ""
    if told.chain:
        cause = f"{told.chain[0]}: {specific}" if specific else told.chain[0]
    else:
        cause = specific or next((line for line in reversed(lines) if line), "")
    if not cause:
        return ""
    lines = [_shorten(cause)]
    if told.hints:
        lines.append("hint: " + _shorten(_sentences(told.hints[0])))
    return "\n".join(lines)
