"""``nbseal verify --cluster local:N`` / ``--scheduler ADDRESS``: a corpus on Dask.

Each notebook is one task (``pure=False``: a re-run is a new verification,
never a cached one) that calls :func:`nbseal.deadline.verify_within` on a
worker. Its result travels back as the JSON ``verify --json`` prints
(``NotebookReport.to_json``), plus the worker's address, the build progress the
notebook showed and when the task started and finished there (``time.time()``;
with the client's submit and receive times, the scheduler's cost per notebook:
bench/bench_dask.py), and the client gathers results as they complete.
Failures are results: a notebook past ``--timeout-notebook`` is cut on its
worker and reported as timed out; a worker that dies mid-notebook loses its
task to the scheduler, which runs it again on another worker (Dask's
``distributed.scheduler.allowed-failures``, 3 by default, after which the
notebook is reported as having killed its workers); a task that raises is
reported as an error of its notebook. Interrupted (Ctrl-C), the client
cancels what is queued, stops the kernels of what is running on the
workers, and returns what was gathered so far.

Workers share the stores through ``NBSEAL_CACHE_DIR`` (file-locked; see
docs/scale.md), so two workers needing one environment build it once. The
workers of ``local:N`` fork from a server that imported nbseal once
(:mod:`nbseal.localworkers`). Dask is optional (``nbseal[dask]``): it is
imported only here, only when used.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbseal.deadline import stop_kernels_of, verify_notebooks_within, verify_within
from nbseal.errors import ClusterError, NotebookCancelledError, RemoteProblem
from nbseal.localworkers import CONFIG, local_workers, start_forkserver
from nbseal.verify import (
    DIFFERS,
    ERROR,
    REPRODUCED,
    CellReport,
    NotebookReport,
    VerifyOptions,
)

if TYPE_CHECKING:
    from distributed import Client, Future

    from nbseal.runner import Reporter, RunEvent

__all__ = [
    "CorpusRun",
    "notebook_verdict",
    "report_from_json",
    "verify_corpus",
]


@dataclass
class CorpusRun:
    """The notebooks' reports in the order given; ``payloads`` as the workers sent them."""

    reports: list[NotebookReport]
    payloads: list[dict[str, Any] | None] = field(default_factory=list)
    interrupted: bool = False
    # On a cluster, when each task was submitted and its result received (time.time()).
    submitted: list[float | None] = field(default_factory=list)
    received: list[float | None] = field(default_factory=list)


def notebook_verdict(report: NotebookReport) -> str:
    """One word for a notebook: reproduced, differs, or error (could not run, or a cell raised)."""
    if report.problem is not None or any(cell.status == ERROR for cell in report.cells):
        return ERROR
    return REPRODUCED if report.ok else DIFFERS


def progress_line(done: int, total: int, tally: Counter[str], report: NotebookReport) -> str:
    counts = ", ".join(f"{tally[word]} {word}" for word in (REPRODUCED, DIFFERS, ERROR))
    return (
        f"[{done}/{total}] {counts} | {report.path}: {notebook_verdict(report)} "
        f"({report.seconds:.1f} s)"
    )


def report_from_json(data: dict[str, Any], path: Path) -> NotebookReport:
    """A worker's JSON back into a report (for the HTML, JUnit and text output)."""
    known = {f.name for f in fields(CellReport)}
    cells = []
    for cell in data.get("cells", []):
        values = {key: value for key, value in cell.items() if key in known}
        values["diff"] = tuple(values.get("diff", ()))
        cells.append(CellReport(**values))
    problem = None
    if data.get("problem"):
        ename = str(data.get("problem_class") or "NbsealError")
        problem = RemoteProblem(str(data["problem"]), ename=ename)
    return NotebookReport(path, cells, float(data.get("seconds", 0.0)), problem)


def _verify_task(path: str, options: VerifyOptions, seconds: float | None) -> dict[str, Any]:
    """One notebook on a worker; returns ``verify --json``'s object and where it ran."""
    from distributed import get_worker

    started = time.time()
    progress: list[str] = []  # what the notebook's builds showed (built, waited for, reused)

    def reporter(event: RunEvent) -> None:
        if event.kind == "progress":
            progress.append(event.text)

    report = verify_within(Path(path), options, seconds, reporter)
    payload = report.to_json()
    payload["problem_class"] = report.problem.ename if report.problem else None
    payload["worker"] = get_worker().address
    payload["progress"] = progress
    payload["started"], payload["finished"] = started, time.time()
    return payload


def dask_setup(worker: Any) -> None:
    """Preloaded in the workers ``--cluster local:N`` starts: Ctrl-C is the client's.

    A terminal's Ctrl-C reaches every process of its group, the workers too;
    the client then cancels the tasks, stops their kernels and closes the
    workers itself, so they ignore it (and print no traceback).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect(cluster: str | None, scheduler: str | None) -> tuple[Client, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ClusterError.dask_missing(exc.name or "distributed") from exc
    if cluster is not None:
        workers = local_workers(cluster)
        start_forkserver()  # started already by the CLI, before its own imports
        local = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,  # a cancelled task's warnings are not the user's news
            preload=["nbseal.distributed"],  # dask_setup, below
        )
        return Client(local), local
    assert scheduler is not None
    try:
        return Client(scheduler, timeout=30), None
    except (OSError, TimeoutError) as exc:
        raise ClusterError.unreachable(scheduler, str(exc)) from exc


def _result(future: Future[Any], path: Path) -> tuple[NotebookReport, dict[str, Any] | None]:
    from distributed import KilledWorker

    try:
        payload: dict[str, Any] = future.result()
    except KilledWorker as exc:
        return NotebookReport(path, problem=ClusterError.workers_died(path, str(exc))), None
    except Exception as exc:  # the task raised on its worker: a result for this notebook
        reason = f"{type(exc).__name__}: {exc}"
        return NotebookReport(path, problem=ClusterError.task_failed(path, reason)), None
    return report_from_json(payload, path), payload


def _on_cluster(
    client: Client,
    paths: Sequence[Path],
    options: VerifyOptions,
    seconds: float | None,
    on_line: Callable[[str], None],
) -> CorpusRun:
    from distributed import as_completed

    count = len(paths)
    run = CorpusRun([NotebookReport(path) for path in paths], [None] * count)
    run.submitted, run.received = [None] * count, [None] * count
    where = [str(path.resolve()) for path in paths]  # the workers see the same file system
    batch = uuid.uuid4().hex[:8]
    futures = {}
    for i in range(count):
        run.submitted[i] = time.time()
        key = f"nbseal-verify-{batch}-{i}"
        futures[client.submit(_verify_task, where[i], options, seconds, key=key, pure=False)] = i
    done: set[int] = set()
    tally: Counter[str] = Counter()
    try:
        for future in as_completed(futures):
            i = futures[future]
            run.reports[i], run.payloads[i] = _result(future, paths[i])
            run.received[i] = time.time()
            done.add(i)
            tally[notebook_verdict(run.reports[i])] += 1
            on_line(progress_line(len(done), len(paths), tally, run.reports[i]))
    except KeyboardInterrupt:
        run.interrupted = True
        pending = [i for i in range(len(paths)) if i not in done]
        for i in pending:
            run.reports[i] = NotebookReport(
                paths[i], problem=NotebookCancelledError.interrupted(paths[i])
            )
        client.cancel([f for f, i in futures.items() if i in pending], force=True)
        with contextlib.suppress(Exception):  # the workers' kernels go with them anyway
            _stop_running(client, [where[i] for i in pending])
    return run


def _executing(dask_worker: Any) -> int:
    return int(dask_worker.state.executing_count)


def _stop_running(client: Client, paths: Sequence[str], patience: float = 15.0) -> None:
    """Stop the kernels of ``paths`` on every worker, until no task of theirs still runs.

    A cancelled task's thread runs on until its notebook ends: its kernel
    killed, it ends within a second or two, and the worker is left idle (and
    can close cleanly) instead of verifying a notebook nobody waits for.
    """
    deadline = time.monotonic() + patience
    while True:
        client.run(stop_kernels_of, paths)  # again, for a kernel that was starting
        if sum(client.run(_executing).values()) == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.25)


def verify_corpus(
    paths: Sequence[Path],
    options: VerifyOptions,
    *,
    jobs: int = 1,
    cluster: str | None = None,
    scheduler: str | None = None,
    notebook_timeout: float | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    reporter_for: Callable[[Path], Reporter | None] = lambda path: None,
) -> CorpusRun:
    """Verify ``paths`` on a Dask cluster (``cluster`` local:N, or ``scheduler``), else here.

    Here, ``jobs`` notebooks run at once in threads, each showing its progress
    to ``reporter_for(path)``; ``notebook_timeout`` cuts a notebook either
    way. ``on_line`` gets a progress line per notebook verified on a cluster.
    """
    if cluster is None and scheduler is None:
        reports = verify_notebooks_within(
            paths, options, notebook_timeout, jobs=jobs, reporter_for=reporter_for
        )
        return CorpusRun(reports, [report.to_json() for report in reports])
    with contextlib.ExitStack() as stack:
        if cluster is not None:  # the workers fork from nbseal's forkserver (localworkers)
            import dask

            stack.enter_context(dask.config.set(CONFIG))
        client, local = _connect(cluster, scheduler)
        try:
            return _on_cluster(client, paths, options, notebook_timeout, on_line)
        finally:
            with contextlib.suppress(Exception):
                client.close()
            if local is not None:
                with contextlib.suppress(Exception):
                    local.close()
