"""Headless execution of a notebook through the nbseal kernel (nbclient underneath).

The kernel starts first (:func:`start_kernel`), before the notebook is read
and before nbclient is imported (:mod:`nbseal.runner.client`): its process
imports nbseal and launches the first environment on one core while this
one reads the notebook and imports nbclient on the other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from nbseal.errors import NotebookError
from nbseal.kernel.kernelspec import InMemoryKernelSpecManager
from nbseal.notebook import (
    KERNEL_NAME,
    mark_kernel,
    read_notebook,
    record_run,
    write_notebook,
)
from nbseal.replay import RecordedInput
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans
from nbseal.timeline import mark

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


class _KernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the nbseal kernel is.

    jupyter_client's ``wait_for_ready`` ends by waiting for 0.2 s of silence
    on iopub, which every run paid. The nbseal kernel welcomes each iopub
    subscriber (``iopub_welcome``), so a kernel_info reply and then any iopub
    message say both channels work. What is left on iopub answers no cell's
    request, and nbclient takes only the messages of each cell's request.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    pass  # iopub not connected yet: ask again
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class _KernelManager(AsyncKernelManager):
    """Starts ``nbseal`` whether or not its kernelspec is installed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_spec_manager", InMemoryKernelSpecManager())
        kwargs.setdefault("client_class", f"{__name__}._KernelClient")
        super().__init__(**kwargs)

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        # jupyter_client looks every 0.1 s whether the kernel has exited: on
        # average 50 ms of every run's end spent waiting for nothing.
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.01), restart)


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

    def __init__(self, km: _KernelManager, run_dir: Path) -> None:
        self.km = km
        self.run_dir = run_dir

    def __enter__(self) -> StartedKernel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # Not km.shutdown_kernel: after a run nbclient has closed the manager's
        # sockets, and a kernel cut by --timeout-notebook is already dead.
        # Killing its session takes its sandboxes along (--die-with-parent).
        process = getattr(self.km.provisioner, "process", None)  # LocalProvisioner's Popen
        try:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # started in a session of its own
                process.wait()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def start_kernel(path: Path, options: RunOptions = _DEFAULTS) -> StartedKernel:
    """Start the nbseal kernel for the notebook at ``path``, without waiting for it.

    The kernel reads the notebook's locks itself and starts in its folder.
    Its connection file (it holds the signing key) and the proxy's runtime
    folder live in a folder of this run's: removed at the end, and by the
    proxy or the next nbseal if this process is killed.
    """
    path = path.resolve()
    if not path.is_file():
        raise NotebookError.missing(path)
    sweep_orphans()
    run_dir = make_runtime_dir("nbseal-run-")
    km = _KernelManager(kernel_name=KERNEL_NAME, connection_file=str(run_dir / "kernel.json"))
    env = dict(os.environ)
    env["NBSEAL_RUNTIME_PARENT"] = str(run_dir)
    env["JPY_SESSION_NAME"] = str(path)
    env["NBSEAL_NO_SANDBOX"] = "0" if options.sandbox else "1"
    if options.keep_workdir is not None:
        options.keep_workdir.mkdir(parents=True, exist_ok=True)
        env["NBSEAL_KEEP_WORKDIR"] = str(options.keep_workdir.resolve())
    env.update(options.extra_env)
    mark("nbseal run", "starting the nbseal kernel")
    started = StartedKernel(km, run_dir)
    try:
        run_sync(km.start_kernel)(env=env, cwd=str(path.parent))
    except BaseException:
        started.close()
        raise
    return started


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
