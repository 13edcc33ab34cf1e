"""``nbseal verify --report``: the verification as one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Sequence

from nbseal.verify import NotebookReport

__all__ = ["render_html"]

_COLORS = {"reproduced": "#1a7f37", "differs": "#b35900", "error": "#c00", "skipped": "#666"}


def _notebook(report: NotebookReport) -> str:
    counts = report.counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    verdict = "verified" if report.ok else "NOT verified"
    parts = [
        f"<h2>{html.escape(str(report.path))}: {verdict}</h2>",
        f"<p>{summary}; {report.seconds:.1f} s</p>",
    ]
    if report.problem is not None:
        parts.append(f"<pre class=problem>{html.escape(report.problem.render())}</pre>")
    rows = []
    for cell in report.cells:
        color = _COLORS.get(cell.status, "#000")
        detail = html.escape(cell.note)
        if cell.cause:  # the evidence says what the note would
            detail = f"<b>{html.escape(cell.cause)}</b>: {html.escape(cell.evidence)}"
        if cell.hint:
            detail += f"<br>hint: {html.escape(cell.hint)}"
        if cell.diff:
            detail += f"<pre>{html.escape(chr(10).join(cell.diff))}</pre>"
        rows.append(
            f"<tr><td>{cell.cell}</td><td style='color:{color}'>{cell.status}</td>"
            f"<td>{detail}</td></tr>"
        )
    if rows:
        parts.append("<table><tr><th>cell</th><th>status</th><th>detail</th></tr>" + "".join(rows))
        parts.append("</table>")
    return "\n".join(parts)


def render_html(reports: Sequence[NotebookReport]) -> str:
    verified = sum(r.ok for r in reports)
    body = "\n".join(_notebook(r) for r in reports)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>nbseal verify</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .6em;"
        "vertical-align:top;text-align:left}pre{background:#f6f8fa;padding:.5em}</style>"
        f"</head><body><h1>nbseal verify: {verified} of {len(reports)} notebooks verified</h1>"
        f"{body}</body></html>\n"
    )
