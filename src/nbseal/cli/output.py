"""What the ``nbseal`` command prints: progress, lock states, verification reports."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nbseal.progress import Progress

if TYPE_CHECKING:  # imported where used: nbclient, nbformat and the backends are slow to import
    from nbseal.locking import LockStatus
    from nbseal.runner import RunEvent
    from nbseal.verify import NotebookReport

__all__ = [
    "ProgressLines",
    "cells_text",
    "describe_lock",
    "err",
    "print_verification",
    "progress_to_stderr",
    "sandbox_line",
]


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class ProgressLines:
    """A build's steps on stderr as they come; a step that lasts, again every half minute."""

    _ELAPSED = re.compile(r" \([\d.]+ s\)")

    def __init__(self, prefix: str = "", *, cells: bool = True) -> None:
        self.prefix = prefix
        self.cells = cells
        self.last = ""
        self.shown_at = 0.0

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "progress":
            step = self._ELAPSED.sub("", event.text)
            if step != self.last or time.monotonic() - self.shown_at >= 30:
                self.last, self.shown_at = step, time.monotonic()
                err(f"    {self.prefix}{event.text}")
        elif self.cells and event.kind != "cell-start":
            mark = "ok" if event.kind == "cell-done" else "ERROR"
            err(f"[{event.cell}/{event.total}] cell {event.cell}: {mark} ({event.seconds:.2f} s)")


def sandbox_line(notebook: Path, *, sealed: bool) -> str:
    """What the sandbox grants this notebook, from its own directives."""
    from nbseal.notebook import code_sources, read_notebook
    from nbseal.plan import plan_notebook
    from nbseal.sandbox.identity import sandbox_identity
    from nbseal.sandbox.limits import memory_cgroup_parent
    from nbseal.sandbox.policy import UNSEALED_SUMMARY, grants_summary

    if not sealed:
        return UNSEALED_SUMMARY
    plan = plan_notebook(code_sources(read_notebook(notebook)))
    folder = notebook.resolve().parent
    shares = [
        ((folder / Path(share.path).expanduser()).resolve(), share.mode, share.path)
        for share in plan.shares
    ]
    machine = sandbox_identity().describe()
    enforced = memory_cgroup_parent()
    if isinstance(enforced, str):
        machine += f"; memory not capped here ({enforced})"
    return grants_summary(
        network=plan.network,
        shares=shares,
        limits=plan.limits,
        machine=machine,
        javascript=plan.javascript,
    )


def cells_text(numbers: list[int]) -> str:
    """``cell 3``, ``cells 2-10`` or ``cells 2, 5``."""
    if len(numbers) == 1:
        return f"cell {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"cells {numbers[0]}-{numbers[-1]}"
    return "cells " + ", ".join(map(str, numbers))


def describe_lock(status: LockStatus) -> str:
    detail = status.reason
    if status.lock is not None and status.state in {"kept", "locked"}:
        lock = status.lock
        python = f"Python {lock.serves} " if lock.serves else ""
        detail = (
            f"{len(lock.packages())} packages as of {lock.exclude_newer}, "
            f"{python}on {' + '.join(lock.platforms)} (key {lock.key[:12]}); {status.reason}"
        )
        detail += "".join(f"\n  {'':<12} {'':<7} {note}" for note in lock.fall_forwards)
    return f"  {status.name:<12} {status.state:<7} {detail}"


def progress_to_stderr(title: str) -> Progress:
    progress = Progress(title)
    progress.subscribe(lambda event: err(f"    {title}: {event.step}"))
    return progress


def print_verification(report: NotebookReport) -> None:
    for cell in report.cells:
        if cell.cause:  # the evidence says what the note would
            print(f"  cell {cell.cell}: {cell.status} — {cell.cause}: {cell.evidence}")
        else:
            print(f"  cell {cell.cell}: {cell.status}" + (f" ({cell.note})" if cell.note else ""))
        if cell.hint:
            print(f"      hint: {cell.hint}")
        for line in cell.diff:
            print(f"      {line}")
    if report.problem is not None:
        print(f"  {report.problem.render()}".replace("\n", "\n  "))
    for note in report.interpreters:
        print(f"  note: {note}")
    counts = ", ".join(f"{n} {status}" for status, n in report.counts().items())
    if report.interpreters:
        counts += f", {len(report.interpreters)} on another Python"
    verdict = "verified" if report.ok else "NOT verified"
    print(f"{report.path}: {verdict} ({counts}; {report.seconds:.1f} s)")
