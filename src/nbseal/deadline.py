"""``--timeout-notebook``: one notebook's verification within a time limit.

The cut stops the notebook's kernels. The proxy kernel is a child of the
verifying process and carries the notebook's path in ``JPY_SESSION_NAME``
(set by :mod:`nbseal.runner`), so the notebook's kernels are found among this
process's children even when several notebooks run at once (``-j N``, or a
Dask worker with several threads). Each is killed with its process group
(jupyter_client starts it in a session of its own; the builds it runs belong
to that group), and the sealed kernels die with it (bwrap's
``--die-with-parent``). nbclient then sees a dead kernel, the verification
returns, and the report keeps the cells judged before the one that was cut.

What runs in this process before a kernel starts (reading the notebook,
``--relock``'s resolution) is not cut: the limit is meant for cells that hang.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from nbseal.errors import NotebookTimeoutError
from nbseal.procfs import stat_fields
from nbseal.verify import NotebookReport, VerifyOptions, verify_notebook

if TYPE_CHECKING:
    from nbseal.runner import Reporter, RunEvent

__all__ = ["kernels_of", "stop_kernels", "verify_notebooks_within", "verify_within"]

SessionMatch = Callable[[str], bool]


def _children() -> list[int]:
    """Pids of this process's children (from /proc)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))  # None: gone meanwhile
        if fields is not None and len(fields) > 1 and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def _session(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(b"JPY_SESSION_NAME="):
            return item.partition(b"=")[2].decode(errors="replace")
    return None


def session_match(path: Path) -> SessionMatch:
    """Whether a kernel's ``JPY_SESSION_NAME`` is ``path``, or its ``--relock`` copy beside it."""
    target = path.resolve()
    copy_prefix = f".{path.stem}.verify-"

    def matches(session: str) -> bool:
        running = Path(session).resolve()
        if running == target:
            return True
        return running.parent == target.parent and running.name.startswith(copy_prefix)

    return matches


def kernels_of(match: SessionMatch) -> list[int]:
    """The pids of this process's kernels whose notebook ``match`` accepts."""
    return [pid for pid in _children() if (name := _session(pid)) is not None and match(name)]


def stop_kernels(match: SessionMatch) -> int:
    """Kill the kernels of the notebooks ``match`` accepts, each with its process group."""
    stopped = 0
    for pid in kernels_of(match):
        try:
            group = os.getpgid(pid)
            if group == os.getpgid(0):  # never this process's own group
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(group, signal.SIGKILL)
            stopped += 1
        except ProcessLookupError:
            continue
    return stopped


def stop_kernels_of(paths: Sequence[str]) -> int:
    """Kill the kernels of any of ``paths`` (run on Dask workers when the client is interrupted)."""
    matches = [session_match(Path(path)) for path in paths]
    return stop_kernels(lambda session: any(match(session) for match in matches))


class _Watch:
    """Cuts one notebook when its time is up; remembers the cell that was running."""

    def __init__(self, path: Path, seconds: float, reporter: Reporter | None) -> None:
        self.match = session_match(path)
        self.seconds = seconds
        self.reporter = reporter
        self.cell: int | None = None
        self.expired = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name=f"deadline {path}", daemon=True)

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "cell-start":
            self.cell = event.cell
        if self.reporter is not None:
            self.reporter(event)

    def _watch(self) -> None:
        if self.done.wait(self.seconds):
            return
        self.expired = True
        while not self.done.is_set():  # again, for a kernel that was starting
            stop_kernels(self.match)
            self.done.wait(1.0)


def verify_within(
    path: Path, options: VerifyOptions, seconds: float | None, reporter: Reporter | None = None
) -> NotebookReport:
    """:func:`~nbseal.verify.verify_notebook`, cut after ``seconds`` (None: no limit)."""
    if seconds is None:
        return verify_notebook(path, options, reporter)
    watch = _Watch(path, seconds, reporter)
    watch.thread.start()
    try:
        report = verify_notebook(path, options, watch)
    except Exception:
        if not watch.expired:
            raise
        report = NotebookReport(path)  # the cut broke the run before a report was made
    finally:
        watch.done.set()
        watch.thread.join()
    if watch.expired:
        report.problem = NotebookTimeoutError.after(path, seconds, watch.cell)
        cut = watch.cell if watch.cell is not None else 0
        report.cells = [cell for cell in report.cells if cell.cell < cut]
    return report


def verify_notebooks_within(
    paths: Sequence[Path],
    options: VerifyOptions,
    seconds: float | None,
    *,
    jobs: int = 1,
    reporter_for: Callable[[Path], Reporter | None] = lambda path: None,
) -> list[NotebookReport]:
    """Verify each notebook, ``jobs`` at once, each cut after ``seconds``.

    Each notebook's progress goes to ``reporter_for(path)``, as
    :func:`~nbseal.verify.verify_notebooks` sends it.
    """

    def verify(path: Path) -> NotebookReport:
        return verify_within(path, options, seconds, reporter_for(path))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(verify, paths))
