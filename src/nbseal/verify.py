"""``nbseal verify``: rebuild from the notebook's own lock, re-execute, compare outputs.

The original file is never modified: the notebook is executed in memory (its
kernel reads the locks from the file), and with ``--relock`` a locked copy is
written beside it and removed afterwards. Cell markers follow nbval's
conventions, so notebooks already checked with nbval need no change.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbseal.compare import DEFAULT_SANITIZERS, Sanitizer, diff_outputs, normalise_outputs
from nbseal.errors import NbsealError, NotebookError
from nbseal.locking import check_locks, lock_notebook
from nbseal.notebook import code_sources, read_notebook, write_notebook
from nbseal.outputs import seal_output
from nbseal.plan import plan_notebook
from nbseal.runner import Reporter, execute_notebook

__all__ = ["CellReport", "NotebookReport", "VerifyOptions", "verify_notebooks"]

REPRODUCED, DIFFERS, ERROR, SKIPPED = "reproduced", "differs", "error", "skipped"

_MARKERS = {
    "skip": ("NBVAL_SKIP", "nbval-skip"),
    "ignore": ("NBVAL_IGNORE_OUTPUT", "nbval-ignore-output"),
    "raises": ("NBVAL_RAISES_EXCEPTION", "raises-exception"),
    "check": ("NBVAL_CHECK_OUTPUT", "nbval-check-output"),
}


@dataclass(frozen=True)
class VerifyOptions:
    relock: bool = False
    lax: bool = False  # nbval-lax: compare only cells marked NBVAL_CHECK_OUTPUT
    sanitizers: tuple[Sanitizer, ...] = DEFAULT_SANITIZERS
    sandbox: bool = True
    timeout: float | None = None
    images: bool = False  # compare image outputs too (pixel share in the diff)


@dataclass(frozen=True)
class CellReport:
    cell: int  # 1-based index among all cells
    status: str  # reproduced | differs | error | skipped
    note: str = ""
    diff: tuple[str, ...] = ()


@dataclass
class NotebookReport:
    path: Path
    cells: list[CellReport] = field(default_factory=list)
    seconds: float = 0.0
    problem: NbsealError | None = None  # refused or could not run

    @property
    def ok(self) -> bool:
        return self.problem is None and all(c.status in (REPRODUCED, SKIPPED) for c in self.cells)

    def counts(self) -> dict[str, int]:
        counts = {REPRODUCED: 0, DIFFERS: 0, ERROR: 0, SKIPPED: 0}
        for cell in self.cells:
            counts[cell.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": str(self.path),
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "problem": self.problem.render() if self.problem else None,
            "counts": self.counts(),
            "cells": [
                {"cell": c.cell, "status": c.status, "note": c.note, "diff": list(c.diff)}
                for c in self.cells
            ],
        }


def _marks(cell: Any) -> set[str]:
    source = str(cell.get("source", ""))
    tags = set(cell.get("metadata", {}).get("tags", []))
    lines = {line.strip().lstrip("#").strip() for line in source.splitlines()}
    return {mark for mark, (comment, tag) in _MARKERS.items() if comment in lines or tag in tags}


def _judge(
    index: int, stored: Any, fresh: Any, options: VerifyOptions, *, sealed_outputs: bool
) -> CellReport:
    marks = _marks(stored)
    if "skip" in marks:
        return CellReport(index, SKIPPED, "NBVAL_SKIP")
    outputs = list(fresh.get("outputs", []))
    raised = next((o for o in outputs if o.get("output_type") == "error"), None)
    if "raises" in marks and raised is None:
        return CellReport(index, DIFFERS, "expected an exception (NBVAL_RAISES_EXCEPTION)")
    if raised is not None and "raises" not in marks:
        note = f"{raised.get('ename', '')}: {raised.get('evalue', '')}"
        return CellReport(index, ERROR, note)
    compare = "check" in marks if options.lax else "ignore" not in marks
    if not compare:
        return CellReport(index, REPRODUCED, "ran; output not compared")
    if stored.get("execution_count") is None and not stored.get("outputs"):
        # As nbval: a cell never executed has no output to reproduce.
        return CellReport(index, REPRODUCED, "ran; never executed in the file, not compared")
    stored_outputs = list(stored.get("outputs", []))
    if sealed_outputs:
        # The re-run's outputs passed the output policy: so do the stored ones.
        stored_outputs = [seal_output(output) for output in stored_outputs]
    expected = normalise_outputs(stored_outputs, options.sanitizers, images=options.images)
    actual = normalise_outputs(outputs, options.sanitizers, images=options.images)
    diff = diff_outputs(expected, actual)
    if diff:
        return CellReport(index, DIFFERS, diff=tuple(diff))
    return CellReport(index, REPRODUCED)


def _allows_javascript(notebook: Any) -> bool:
    """Whether the notebook says ``#seal allow javascript`` (its outputs are then not sealed)."""
    try:
        return plan_notebook(code_sources(notebook)).javascript
    except NbsealError:
        return False  # the cell with the bad directive reports it when it runs


def _locked_copy(path: Path) -> Path:
    """A copy beside the original (so relative data paths still resolve), then locked."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.verify-", suffix=".ipynb", dir=path.parent)
    os.close(fd)
    copy_path = Path(name)
    write_notebook(read_notebook(path), copy_path)
    lock_notebook(copy_path)
    return copy_path


def _refuse_unless_locked(path: Path) -> None:
    bad = [s for s in check_locks(path) if not s.ok]
    if bad:
        details = "\n".join(f"{s.name}: {s.state} ({s.reason})" for s in bad)
        raise NotebookError(
            f"{path} cannot be verified: its lock is missing or stale",
            context=details,
            hint=f"run `nbseal lock {path}` and commit it, or pass --relock to resolve afresh",
        )


def verify_notebook(
    path: Path, options: VerifyOptions, reporter: Reporter | None = None
) -> NotebookReport:
    report = NotebookReport(path)
    started = time.monotonic()
    locked_copy: Path | None = None
    try:
        stored = read_notebook(path)
        if options.relock:
            locked_copy = _locked_copy(path)
        else:
            _refuse_unless_locked(path)
        fresh = copy.deepcopy(stored)
        for cell in fresh.cells:
            if cell.get("cell_type") == "code":
                cell.outputs = []
                if "skip" in _marks(cell):
                    cell.source = ""  # never executed
        execute_notebook(
            fresh,
            locked_copy or path.resolve(),
            timeout=options.timeout,
            reporter=reporter,
            sandbox=options.sandbox,
            allow_errors=True,
        )
        sealed_outputs = options.sandbox and not _allows_javascript(stored)
        for index, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True), start=1):
            if old.get("cell_type") == "code":
                report.cells.append(_judge(index, old, new, options, sealed_outputs=sealed_outputs))
    except NbsealError as exc:
        report.problem = exc
    finally:
        if locked_copy is not None:
            locked_copy.unlink(missing_ok=True)
        report.seconds = time.monotonic() - started
    return report


def verify_notebooks(
    paths: Sequence[Path],
    options: VerifyOptions,
    *,
    jobs: int = 1,
    reporter_for: Callable[[Path], Reporter | None] = lambda path: None,
) -> list[NotebookReport]:
    """Verify each notebook; ``jobs`` run at once, sharing the stores (file-locked)."""
    if jobs <= 1 or len(paths) <= 1:
        return [verify_notebook(p, options, reporter_for(p)) for p in paths]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda p: verify_notebook(p, options, reporter_for(p)), paths))
