"""``nbseal verify``: rebuild from the notebook's own lock, re-execute, compare outputs.

The original file is never modified: the notebook is executed in memory (its
kernel reads the locks from the file), and with ``--relock`` a locked copy is
written beside it and removed afterwards. Cell markers follow nbval's
conventions, so notebooks already checked with nbval need no change. A cell
that differs or raised is explained (:mod:`nbseal.explain`): a cause and its
evidence. A stored error that the re-run raises the same way is reproduced.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbseal.compare import (
    DEFAULT_SANITIZERS,
    Sanitizer,
    author_folder,
    author_folder_sanitizer,
    diff_outputs,
    has_image,
    normal_error,
    normalise_outputs,
)
from nbseal.directives import parse_cell
from nbseal.errors import NbsealError, NotebookError
from nbseal.explain import FAILED_ENVIRONMENT, Explanation, explain_difference, explain_error
from nbseal.locking import check_locks, lock_notebook
from nbseal.notebook import code_sources, metadata_locks, read_notebook, write_notebook
from nbseal.outputs import seal_output
from nbseal.plan import plan_notebook
from nbseal.replay import RecordedInput
from nbseal.streams import multiline

if TYPE_CHECKING:
    from nbseal.runner import Reporter

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
    # Why it differs or raised (nbseal.explain), with one line of evidence and a hint.
    cause: str = ""
    evidence: str = ""
    hint: str = ""

    @classmethod
    def explained(
        cls, cell: int, status: str, why: Explanation, note: str = "", diff: tuple[str, ...] = ()
    ) -> CellReport:
        return cls(cell, status, note, diff, why.cause, why.evidence, why.hint)


@dataclass
class NotebookReport:
    path: Path
    cells: list[CellReport] = field(default_factory=list)
    seconds: float = 0.0
    problem: NbsealError | None = None  # refused or could not run
    # Environments whose interpreter here is not the lock's ("py: built with
    # 3.11.2, locked with 3.11.7: patch release differs"): told, not refused.
    interpreters: list[str] = field(default_factory=list)

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
            "interpreters": list(self.interpreters),
            "cells": [
                {
                    "cell": c.cell,
                    "status": c.status,
                    "note": c.note,
                    "diff": list(c.diff),
                    "cause": c.cause,
                    "evidence": c.evidence,
                    "hint": c.hint,
                }
                for c in self.cells
            ],
        }


def _interpreter_notes(notebook: Any) -> list[str]:
    """Each locked environment whose interpreter here differs from the lock's."""
    from nbseal.backends import backend_for

    notes = []
    for name, lock in sorted(metadata_locks(notebook).items()):
        with contextlib.suppress(ValueError):  # a backend this nbseal does not know
            note = backend_for(lock.backend).interpreter_note(lock)
            if note is not None:
                notes.append(f"{name}: {note}")
    return notes


_UNRUN = "never executed in the file, while later cells were: not run, as in the stored run"


def _never_run_by_author(notebook: Any) -> set[int]:
    """The code cells (1-based) the stored run left out: verify leaves them out too.

    A cell with no execution count and no output, in a notebook whose other
    cells show a run, was not part of the run that made the stored outputs
    (a cell left as ``collections.`` to show tab completion). Running it
    would raise where the author's run did not and shift every later
    execution count (``_10``, ``Out[10]``, ``In[11]``). A cell of ``#seal``
    directives runs all the same: it declares what the others run in. With
    no cell executed at all there is no stored run, and every cell runs.
    """
    code = [
        (index, cell)
        for index, cell in enumerate(notebook.cells, start=1)
        if cell.get("cell_type") == "code"
    ]
    if not any(cell.get("execution_count") is not None for _, cell in code):
        return set()
    return {
        index
        for index, cell in code
        if cell.get("execution_count") is None
        and not cell.get("outputs")
        and str(cell.get("source", "")).strip()
        and not _declares(str(cell.get("source", "")))
    }


def _declares(source: str) -> bool:
    try:
        return bool(parse_cell(source).directives)
    except NbsealError:
        return True  # a malformed directive: the run reports it at this cell


def _with_author_folder(options: VerifyOptions, notebook: Any, path: Path) -> VerifyOptions:
    """``options``, comparing the notebook's folder on its author's machine as ``WORKDIR``.

    Where the stored outputs print the folder the author ran the notebook in
    (``!pwd``, a path built from ``os.getcwd()``), the re-run prints its own
    working directory there, which the default sanitisers call ``WORKDIR``.
    """
    folder = author_folder(_printed(notebook), path.resolve().parent.name)
    if folder is None:
        return options
    return dataclasses.replace(
        options, sanitizers=(*options.sanitizers, author_folder_sanitizer(folder))
    )


def _printed(notebook: Any) -> Iterator[str]:
    """The text of every stored output: streams, plain-text reprs, error messages."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            for value in (
                output.get("text", ""),
                output.get("data", {}).get("text/plain", ""),
                output.get("evalue", ""),
            ):
                yield multiline(value)


def _marks(cell: Any) -> set[str]:
    source = str(cell.get("source", ""))
    tags = set(cell.get("metadata", {}).get("tags", []))
    lines = {line.strip().lstrip("#").strip() for line in source.splitlines()}
    return {mark for mark, (comment, tag) in _MARKERS.items() if comment in lines or tag in tags}


@dataclass
class _Notebook:
    """What judging a cell may need of the cells before it."""

    path: Path
    earlier: list[tuple[int, str]] = field(default_factory=list)  # (cell, source)
    first_failure: int | None = None  # the cell that told an environment's failure


def _error(outputs: list[Any], sanitizers: tuple[Sanitizer, ...]) -> str | None:
    raised = next((o for o in outputs if o.get("output_type") == "error"), None)
    if raised is None:
        return None
    return normal_error(str(raised.get("ename", "")), str(raised.get("evalue", "")), sanitizers)


def _judge_error(index: int, raised: Any, stored_error: str | None, seen: _Notebook) -> CellReport:
    ename, evalue = str(raised.get("ename", "")), str(raised.get("evalue", ""))
    why = explain_error(
        ename,
        evalue,
        stored=stored_error,
        first_failure=seen.first_failure,
        notebook=seen.path.name,
    )
    if why.cause == FAILED_ENVIRONMENT and seen.first_failure is None:
        seen.first_failure = index
    return CellReport.explained(index, ERROR, why, f"{ename}: {evalue}")


def _judge(
    index: int,
    stored: Any,
    fresh: Any,
    options: VerifyOptions,
    *,
    sealed_outputs: bool,
    seen: _Notebook,
) -> CellReport:
    marks = _marks(stored)
    if "skip" in marks:
        return CellReport(index, SKIPPED, "NBVAL_SKIP")
    outputs = list(fresh.get("outputs", []))
    raised = next((o for o in outputs if o.get("output_type") == "error"), None)
    stored_error = _error(list(stored.get("outputs", [])), options.sanitizers)
    note = ""
    if "raises" in marks and raised is None:
        return CellReport(index, DIFFERS, "expected an exception (NBVAL_RAISES_EXCEPTION)")
    if raised is not None and "raises" not in marks:
        if stored_error is None or _error(outputs, options.sanitizers) != stored_error:
            return _judge_error(index, raised, stored_error, seen)
        note = f"raised as stored: {raised.get('ename', '')}: {raised.get('evalue', '')}"
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
    # A figure's text reprs are left out where either side shows the figure.
    figures = has_image(stored_outputs) or has_image(outputs)
    how = {"images": options.images, "figures": figures}
    expected = normalise_outputs(stored_outputs, options.sanitizers, **how)
    actual = normalise_outputs(outputs, options.sanitizers, **how)
    diff = diff_outputs(expected, actual)
    if diff:
        unraised = stored_error if raised is None and "raises" not in marks else None
        why = explain_difference(
            str(stored.get("source", "")), seen.earlier, expected, actual, stored_error=unraised
        )
        return CellReport.explained(index, DIFFERS, why, diff=tuple(diff))
    return CellReport(index, REPRODUCED, note)


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
        raise NotebookError.lock_not_current(path, details)


def verify_notebook(
    path: Path, options: VerifyOptions, reporter: Reporter | None = None
) -> NotebookReport:
    # Here, not at the top: nbclient brings nbformat and jsonschema (1-3 s of CPU),
    # which a Dask client gathering reports never needs (nbseal.localworkers).
    from nbseal.runner import RunOptions, execute_notebook

    report = NotebookReport(path)
    started = time.monotonic()
    locked_copy: Path | None = None
    try:
        stored = read_notebook(path)
        if options.relock:
            locked_copy = _locked_copy(path)
        else:
            _refuse_unless_locked(path)
        report.interpreters = _interpreter_notes(stored)
        options = _with_author_folder(options, stored, path)
        fresh = copy.deepcopy(stored)
        unrun = _never_run_by_author(stored)
        for index, cell in enumerate(fresh.cells, start=1):
            if cell.get("cell_type") == "code":
                cell.outputs = []
                if "skip" in _marks(cell) or index in unrun:
                    cell.source = ""  # nbclient does not execute an empty cell
        how = RunOptions(
            timeout=options.timeout,
            reporter=reporter,
            sandbox=options.sandbox,
            allow_errors=True,
            recorded_input=RecordedInput.of_notebook(stored),
        )
        ran = execute_notebook(fresh, locked_copy or path.resolve(), how)
        # A timeout or a dead kernel stopped the run: the cells from there on did not run.
        last = ran.failed.cell - 1 if ran.failed is not None else len(fresh.cells)
        sealed_outputs = options.sandbox and not _allows_javascript(stored)
        seen = _Notebook(path)
        for index, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True), start=1):
            if old.get("cell_type") != "code" or index > last:
                continue
            if index in unrun:
                report.cells.append(CellReport(index, SKIPPED, _UNRUN))
                continue
            judged = _judge(index, old, new, options, sealed_outputs=sealed_outputs, seen=seen)
            report.cells.append(judged)
            seen.earlier.append((index, str(old.get("source", ""))))
        report.problem = ran.failed
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
