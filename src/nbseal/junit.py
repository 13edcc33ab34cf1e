"""``nbseal verify --junit FILE``: the verification as JUnit XML, for CI systems.

One ``testsuite`` per run, one ``testcase`` per notebook (its path as the
name, ``time`` its seconds). A notebook whose cells differ has a
``failure``; one that could not run (refused, timed out, lost its workers) or
whose cells raised has an ``error``; one the run was interrupted before is
``skipped``. The text of each holds the cells' verdicts and diffs. Attributes
follow the JUnit schema Jenkins, GitLab and GitHub's test reporters read.
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from nbseal.errors import NotebookCancelledError
from nbseal.verify import DIFFERS, ERROR, NotebookReport

__all__ = ["render_junit"]

# XML 1.0 cannot hold most control characters (tracebacks carry ANSI escapes).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", _ANSI.sub("", value))


def _cells(report: NotebookReport, statuses: tuple[str, ...]) -> list[str]:
    lines = []
    for cell in report.cells:
        if cell.status in statuses:
            lines.append(
                f"cell {cell.cell}: {cell.status}" + (f" ({cell.note})" if cell.note else "")
            )
            lines.extend(f"    {line}" for line in cell.diff)
    return lines


def _outcome(report: NotebookReport) -> tuple[str, str, str, str] | None:
    """(element, type, message, text) of a notebook that did not verify; None if it did."""
    raised = [cell.cell for cell in report.cells if cell.status == ERROR]
    differs = [cell.cell for cell in report.cells if cell.status == DIFFERS]
    if isinstance(report.problem, NotebookCancelledError):
        return "skipped", "", report.problem.message, ""
    if report.problem is not None:
        message = report.problem.render().splitlines()[0]
        detail = [report.problem.render(), *_cells(report, (ERROR, DIFFERS))]
        return "error", report.problem.ename, message, "\n".join(detail)
    if raised:
        message = f"cell(s) {', '.join(map(str, raised))} raised"
        return "error", "CellError", message, "\n".join(_cells(report, (ERROR, DIFFERS)))
    if differs:
        message = f"cell(s) {', '.join(map(str, differs))} differ from the stored outputs"
        return "failure", "OutputsDiffer", message, "\n".join(_cells(report, (DIFFERS,)))
    return None


def render_junit(reports: Sequence[NotebookReport], *, name: str = "nbseal verify") -> str:
    outcomes = [_outcome(report) for report in reports]
    kinds = [outcome[0] if outcome else "" for outcome in outcomes]
    totals = {
        "tests": str(len(reports)),
        "failures": str(kinds.count("failure")),
        "errors": str(kinds.count("error")),
        "skipped": str(kinds.count("skipped")),
        "time": f"{sum(report.seconds for report in reports):.3f}",
    }
    suites = ET.Element("testsuites", {"name": name, **totals})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": name,
            **totals,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": socket.gethostname(),
        },
    )
    for report, outcome in zip(reports, outcomes, strict=True):
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "name": _text(str(report.path)),
                "classname": "nbseal.verify",
                "file": _text(str(report.path)),
                "time": f"{report.seconds:.3f}",
            },
        )
        if outcome is None:
            continue
        element, kind, message, text = outcome
        attributes = {"message": _text(message)} | ({"type": kind} if kind else {})
        ET.SubElement(case, element, attributes).text = _text(text) or None
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
