"""nbclient, telling nbseal's reporter what a run does: cells started and done, builds.

Apart from the rest of :mod:`nbseal.runner` so that ``nbseal run`` imports nbclient (and
nbformat, jsonschema) only after the nbseal kernel has started: the two
processes' imports then overlap.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from nbseal.kernel.display import PROGRESS_MIME
from nbseal.replay import RecordedInput
from nbseal.runner import Reporter, RunEvent
from nbseal.streams import merge_streams
from nbseal.timeline import mark

__all__ = ["ReportingClient"]

# Seconds an input request waits before its echo is stored (see _answer_input).
_ECHO_SETTLE = 0.05


class ReportingClient(NotebookClient):
    """nbclient with nbseal's progress displays passed to a reporter."""

    def __init__(
        self,
        notebook: Any,
        reporter: Reporter,
        recorded_input: RecordedInput | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(notebook, **kwargs)
        self._recorded_input = recorded_input
        self._answering: asyncio.Task[None] | None = None
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
        mark("nbseal run", "connecting to the nbseal kernel")
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
        if self._recorded_input is not None and self.kc is not None:
            self.kc.allow_stdin = True  # nbclient says False: nobody would answer
            self._answering = asyncio.ensure_future(self._answer_input(self._recorded_input))
        return client

    async def _answer_input(self, recorded: RecordedInput) -> None:
        """Answer each input request with what the stored notebook recorded (nbseal.replay)."""
        assert self.kc is not None
        while True:
            msg = await self.kc.stdin_channel.get_msg()
            if msg["msg_type"] != "input_request":
                continue
            content = msg["content"]
            cell = self.current_cell
            answer = recorded.answer(
                cell, str(content.get("prompt", "")), bool(content.get("password"))
            )
            if answer.echo is not None:
                # What the kernel printed before asking reaches nbclient on iopub,
                # beside this request: let it land first, as in the author's frontend.
                await asyncio.sleep(_ECHO_SETTLE)
                echo = nbformat.from_dict(answer.echo)  # type: ignore[no-untyped-call]
                self.nb.cells[cell - 1].outputs.append(echo)
            self.kc.input(answer.value)

    async def _async_cleanup_kernel(self) -> None:
        if self._answering is not None:
            self._answering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._answering
            self._answering = None
        await super()._async_cleanup_kernel()

    def _cell_start(self, cell: Any, cell_index: int) -> None:
        self._started = time.monotonic()
        self.current_cell = cell_index + 1
        mark("nbseal run", f"cell {cell_index + 1}: sent")
        self._reporter(RunEvent("cell-start", cell_index + 1, self._total))

    def _cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        seconds = time.monotonic() - self._started
        self._store_as_displayed(cell, cell_index)
        self.timings.append(seconds)
        status = execute_reply.get("content", {}).get("status", "ok")
        kind = "cell-done" if status == "ok" else "cell-error"
        mark("nbseal run", f"cell {cell_index + 1}: {status} ({seconds * 1000:.1f} ms)")
        self._reporter(RunEvent(kind, cell_index + 1, self._total, status, seconds))

    def _store_as_displayed(self, cell: Any, cell_index: int) -> None:
        """The cell's streams as JupyterLab stores them: a progress bar's
        hundreds of updates become its last state (nbseal.streams)."""
        merged, where = merge_streams(list(cell.outputs))
        moved = len(merged) != len(cell.outputs)
        cell.outputs = merged
        if not moved:
            return
        # nbclient finds the outputs a later update_display_data replaces by
        # their index in the cell: {display id: {cell index: [output index]}}.
        for cells in self._display_id_map.values():
            if cell_index in cells:
                cells[cell_index] = sorted({where[index] for index in cells[cell_index]})

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
