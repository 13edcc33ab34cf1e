"""Headless execution of a notebook through the nbseal kernel (nbclient underneath)."""

from __future__ import annotations

import atexit
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from nbseal.errors import NotebookError
from nbseal.kernel.display import PROGRESS_MIME
from nbseal.kernel.kernelspec import InMemoryKernelSpecManager
from nbseal.notebook import (
    KERNEL_NAME,
    mark_kernel,
    read_notebook,
    record_run,
    write_notebook,
)
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans
from nbseal.timeline import mark

__all__ = [
    "CellFailedError",
    "RunEvent",
    "RunOptions",
    "RunResult",
    "execute_notebook",
    "run_notebook",
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


class _Client(NotebookClient):
    """nbclient with nbseal's progress displays passed to a reporter."""

    def __init__(self, notebook: Any, reporter: Reporter, **kwargs: Any) -> None:
        super().__init__(notebook, **kwargs)
        # The kernel manager is ours but made for this run only: nbclient shuts
        # the kernel down at the end (a proxy left to notice its parent's exit
        # would outlive the run and print after it).
        self.owns_km = True
        self._reporter = reporter
        self._total = len(notebook.cells)
        self._started = 0.0
        self.current_cell = 0
        self.timings: list[float] = []
        self.on_cell_start = self._cell_start
        self.on_cell_executed = self._cell_executed

    async def async_start_new_kernel_client(self) -> Any:
        mark("nbseal run", "starting the nbseal kernel")
        try:
            client = await super().async_start_new_kernel_client()
        except BaseException:
            # A kernel that died at start (stopped by --timeout-notebook or Ctrl-C)
            # is cleaned up by nbclient, which leaves its exit hook registered: at
            # exit it would fail on the cleaned-up client and print a traceback.
            atexit.unregister(self._cleanup_kernel)
            raise
        # The kernel has read its connection file and the client holds the key:
        # headless, nobody else attaches, so the key leaves the disk now.
        if self.km is not None:
            Path(self.km.connection_file).unlink(missing_ok=True)
        mark("nbseal run", "the nbseal kernel answered kernel_info")
        return client

    def _cell_start(self, cell: Any, cell_index: int) -> None:
        self._started = time.monotonic()
        self.current_cell = cell_index + 1
        mark("nbseal run", f"cell {cell_index + 1}: sent")
        self._reporter(RunEvent("cell-start", cell_index + 1, self._total))

    def _cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        seconds = time.monotonic() - self._started
        self.timings.append(seconds)
        status = execute_reply.get("content", {}).get("status", "ok")
        kind = "cell-done" if status == "ok" else "cell-error"
        mark("nbseal run", f"cell {cell_index + 1}: {status} ({seconds * 1000:.1f} ms)")
        self._reporter(RunEvent(kind, cell_index + 1, self._total, status, seconds))

    def process_message(self, msg: Any, cell: Any, cell_index: int) -> Any:
        # Every step of a build, not only its first: the kernel updates one display in
        # place, and nbclient passes an update_display_data to no output hook.
        kind = msg.get("header", {}).get("msg_type")
        data = msg.get("content", {}).get("data", {})
        if kind in ("display_data", "update_display_data") and PROGRESS_MIME in data:
            self._reporter(
                RunEvent("progress", cell_index + 1, self._total, data.get("text/plain", ""))
            )
        return super().process_message(msg, cell, cell_index)


@dataclass(frozen=True)
class RunOptions:
    """How a notebook runs.

    ``timeout`` is the seconds a cell may take (None: no limit); kernels run
    sealed unless ``sandbox`` is False; what they write in their working
    directory is kept in ``keep_workdir`` when given, else removed. With
    ``allow_errors`` every cell runs, and the cells that raised are listed
    in ``errors`` instead of stopping the run.
    """

    timeout: float | None = None
    reporter: Reporter | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    sandbox: bool = True
    keep_workdir: Path | None = None
    allow_errors: bool = False


_DEFAULTS = RunOptions()


def run_notebook(
    path: Path, output: Path | None = None, options: RunOptions = _DEFAULTS
) -> RunResult:
    """Execute ``path`` with the nbseal kernel and write it (with outputs) to ``output``."""
    path = path.resolve()
    output = (output or path).resolve()
    notebook = read_notebook(path)
    result = execute_notebook(notebook, path, options)
    record_run(notebook, sealed=options.sandbox)
    write_notebook(notebook, output)
    mark("nbseal run", f"outputs written to {output.name}")
    result.output = output
    return result


def execute_notebook(notebook: Any, path: Path, options: RunOptions = _DEFAULTS) -> RunResult:
    """Execute ``notebook`` (in memory, outputs filled in) as the file at ``path``.

    The kernel reads locks from ``path`` and starts in its folder.
    """
    mark_kernel(notebook)
    # The kernel's connection file (it holds the signing key) and the proxy's
    # runtime folder live in a folder of this run's: removed at the end, and
    # by the proxy or the next nbseal if this process is killed.
    sweep_orphans()
    run_dir = make_runtime_dir("nbseal-run-")
    try:
        return _execute_in(notebook, path, run_dir, options)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _execute_in(notebook: Any, path: Path, run_dir: Path, options: RunOptions) -> RunResult:
    km = _KernelManager(kernel_name=KERNEL_NAME, connection_file=str(run_dir / "kernel.json"))
    client = _Client(
        notebook,
        options.reporter or (lambda event: None),
        km=km,
        timeout=options.timeout,
        kernel_name=KERNEL_NAME,
        allow_errors=options.allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    env = dict(os.environ)
    env["NBSEAL_RUNTIME_PARENT"] = str(run_dir)
    env["JPY_SESSION_NAME"] = str(path)
    env["NBSEAL_NO_SANDBOX"] = "0" if options.sandbox else "1"
    if options.keep_workdir is not None:
        options.keep_workdir.mkdir(parents=True, exist_ok=True)
        env["NBSEAL_KEEP_WORKDIR"] = str(options.keep_workdir.resolve())
    env.update(options.extra_env)
    started = time.monotonic()
    failed: CellFailedError | None = None
    try:
        client.execute(env=env)
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
