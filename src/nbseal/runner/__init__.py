"""Headless execution of a notebook through the nbseal kernel (nbclient underneath).

The kernel starts first (:func:`start_kernel`), before the notebook is read
and before jupyter_client and nbclient are imported (:mod:`nbseal.runner.manager`,
:mod:`nbseal.runner.client`): its process imports nbseal and launches the
first environment on one core while this one imports them, reads the
notebook and connects on the other.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbseal.errors import NotebookError
from nbseal.kernel.kernelspec import kernelspec_dict
from nbseal.notebook import (
    KERNEL_NAME,
    mark_kernel,
    read_notebook,
    record_run,
    write_notebook,
)
from nbseal.replay import RecordedInput
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans, write_ipc_connection_file
from nbseal.timeline import mark

if TYPE_CHECKING:
    from nbseal.runner.manager import RunKernelManager

__all__ = [
    "CellFailedError",
    "RunEvent",
    "RunOptions",
    "RunResult",
    "StartedKernel",
    "execute_notebook",
    "run_notebook",
    "start_kernel",
]


@dataclass(frozen=True)
class RunEvent:
    """Something a reporter may show: a cell started or ended, or a build progressed."""

    kind: str  # "cell-start" | "cell-done" | "cell-error" | "progress"
    cell: int  # 1-based index in the notebook
    total: int
    text: str = ""
    seconds: float = 0.0


Reporter = Callable[[RunEvent], None]


class CellFailedError(NotebookError):
    """A cell raised, or ran past the ``timeout``; carries what the kernel said, as nbclient's
    error does. A timeout is one line (:meth:`timed_out`): the cell, the limit, the option."""

    def __init__(
        self, cell: int, ename: str, evalue: str, traceback: str, *, timeout: float | None = None
    ) -> None:
        if timeout is None:
            super().__init__(
                f"cell {cell} failed: {ename}: {evalue}",
                context=traceback,
                hint="fix the cell, or tag it raises-exception if the error is expected",
            )
        else:
            super().__init__(
                f"cell {cell} did not finish within {timeout:g} s; "
                "raise the limit with --timeout SECONDS"
            )
        self.cell = cell
        self.error_name = ename
        self.evalue = evalue
        self.traceback = traceback
        self.timeout = timeout

    @classmethod
    def timed_out(cls, cell: int, timeout: float) -> CellFailedError:
        """Cell ``cell`` had no reply within ``timeout`` seconds, so the run stopped there."""
        return cls(cell, "CellTimeoutError", f"no reply within {timeout:g} s", "", timeout=timeout)


@dataclass
class RunResult:
    output: Path
    cells_run: int
    seconds: float
    failed: CellFailedError | None = None
    timings: list[float] = field(default_factory=list)
    # With allow_errors: (code cell number, "ename: evalue") of each cell that raised.
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RunOptions:
    """How a notebook runs.

    ``timeout`` is the seconds a cell may take (None: no limit); kernels run
    sealed unless ``sandbox`` is False; what they write in their working
    directory is kept in ``keep_workdir`` when given, else removed. With
    ``allow_errors`` every cell runs, and the cells that raised are listed
    in ``errors`` instead of stopping the run. With ``recorded_input`` the
    cells' input requests are answered from it (``nbseal verify``), where
    a run has no one to answer them otherwise.
    """

    timeout: float | None = None
    reporter: Reporter | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    sandbox: bool = True
    keep_workdir: Path | None = None
    allow_errors: bool = False
    recorded_input: RecordedInput | None = None


_DEFAULTS = RunOptions()


class StartedKernel:
    """The nbseal kernel of one run, started before its notebook is read.

    A context manager: on leaving, a kernel no run has stopped (the notebook
    could not be read, Ctrl-C) is killed, and the run's folder, which holds
    the connection file and the proxy's runtime folder, is removed.
    """

    def __init__(self, process: subprocess.Popen[bytes], connection_file: Path) -> None:
        self.process = process
        self.connection_file = connection_file
        self.run_dir = connection_file.parent

    @cached_property
    def km(self) -> RunKernelManager:
        """jupyter_client's manager of the kernel (imported here, once the kernel runs)."""
        from nbseal.runner.manager import take_over

        mark("nbseal run", "jupyter_client imported")
        return take_over(self.process, self.connection_file)

    def __enter__(self) -> StartedKernel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # Not km.shutdown_kernel: after a run nbclient has closed the manager's
        # sockets, and a kernel cut by --timeout-notebook is already dead.
        # Killing its session takes its sandboxes along (--die-with-parent).
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # a session of its own
                self.process.wait()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def start_kernel(path: Path, options: RunOptions = _DEFAULTS) -> StartedKernel:
    """Start the nbseal kernel for the notebook at ``path``, without waiting for it.

    The kernel reads the notebook's locks itself and starts in its folder.
    Its connection file (it holds the signing key) and the proxy's runtime
    folder live in a folder of this run's: removed at the end, and by the
    proxy or the next nbseal if this process is killed. The kernel listens
    on ipc sockets in that folder (mode 0700), not on TCP ports: nothing but
    this run reaches it. jupyter_client is not imported on the way: the
    kernel's start and that import overlap.
    """
    path = path.resolve()
    if not path.is_file():
        raise NotebookError.missing(path)
    sweep_orphans()
    run_dir = make_runtime_dir("nbseal-run-")
    connection_file = run_dir / "kernel.json"
    write_ipc_connection_file(
        connection_file, sockets=run_dir / "ipc", key=secrets.token_hex(32), kernel_name=KERNEL_NAME
    )
    env = dict(os.environ)
    env["NBSEAL_RUNTIME_PARENT"] = str(run_dir)
    env["JPY_SESSION_NAME"] = str(path)
    # The kernel stops when this process is gone (nbseal.kernel.app.watch_parent).
    env["JPY_PARENT_PID"] = str(os.getpid())
    env["NBSEAL_NO_SANDBOX"] = "0" if options.sandbox else "1"
    if options.keep_workdir is not None:
        options.keep_workdir.mkdir(parents=True, exist_ok=True)
        env["NBSEAL_KEEP_WORKDIR"] = str(options.keep_workdir.resolve())
    env.update(options.extra_env)
    argv = [arg.format(connection_file=connection_file) for arg in kernelspec_dict()["argv"]]
    mark("nbseal run", "starting the nbseal kernel")
    try:
        process = subprocess.Popen(
            argv, env=env, cwd=path.parent, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return StartedKernel(process, connection_file)


def run_notebook(
    path: Path,
    output: Path | None = None,
    options: RunOptions = _DEFAULTS,
    kernel: StartedKernel | None = None,
) -> RunResult:
    """Execute ``path`` with the nbseal kernel and write it (with outputs) to ``output``.

    ``kernel``, from :func:`start_kernel` for the same path and options, is
    the kernel to run in; without it one is started before the notebook is
    read.
    """
    path = path.resolve()
    output = (output or path).resolve()
    with kernel or start_kernel(path, options) as started:
        notebook = read_notebook(path)
        result = execute_notebook(notebook, path, options, started)
    record_run(notebook, sealed=options.sandbox)
    write_notebook(notebook, output)
    mark("nbseal run", f"outputs written to {output.name}")
    result.output = output
    return result


def execute_notebook(
    notebook: Any,
    path: Path,
    options: RunOptions = _DEFAULTS,
    kernel: StartedKernel | None = None,
) -> RunResult:
    """Execute ``notebook`` (in memory, outputs filled in) as the file at ``path``.

    The kernel reads locks from ``path`` and starts in its folder; ``kernel``,
    when given, is one :func:`start_kernel` started for it.
    """
    mark_kernel(notebook)
    if kernel is None:
        with start_kernel(path, options) as started:
            return _execute_in(notebook, path, started, options)
    return _execute_in(notebook, path, kernel, options)


def _execute_in(notebook: Any, path: Path, kernel: StartedKernel, options: RunOptions) -> RunResult:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from nbseal.runner.client import ReportingClient

    client = ReportingClient(
        notebook,
        options.reporter or (lambda event: None),
        options.recorded_input,
        km=kernel.km,
        timeout=options.timeout,
        kernel_name=KERNEL_NAME,
        allow_errors=options.allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    failed: CellFailedError | None = None
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = CellFailedError(
            client.current_cell, exc.ename, exc.evalue, str(exc.traceback or "")
        )
    except CellTimeoutError:
        failed = CellFailedError.timed_out(client.current_cell, options.timeout or 0.0)
    except DeadKernelError as exc:
        failed = CellFailedError(client.current_cell, "DeadKernelError", str(exc), "")
    seconds = time.monotonic() - started
    mark("nbseal run", "the nbseal kernel stopped")
    result = RunResult(path, len(client.timings), seconds, failed, client.timings)
    code_cells = [cell for cell in notebook.cells if cell.get("cell_type") == "code"]
    for number, cell in enumerate(code_cells, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                result.errors.append((number, f"{output.get('ename')}: {output.get('evalue')}"))
    return result
