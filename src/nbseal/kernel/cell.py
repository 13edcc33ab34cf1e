"""A cell's directives: what each ``#seal`` line does in a running notebook.

:meth:`Cells.prepare` is the execution queue's cell runner: it parses the
cell, checks all its directives against the notebook before any takes
effect, applies them in order (defining and switching environments, pins,
grants, data, ``describe`` and ``help``), and returns the kernel and the code
left to run, or None when the cell held only directives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nbseal.backends import backend_for_requirements
from nbseal.datastore import DataStore
from nbseal.directives import (
    HELP_TEXT,
    AllowDirective,
    DataDirective,
    DescribeDirective,
    Directive,
    EnvSwitchDirective,
    HelpDirective,
    LimitDirective,
    ShareDirective,
    parse_cell,
)
from nbseal.errors import NbsealError
from nbseal.kernel.app import ProxyIO
from nbseal.kernel.describe import describe_bundle
from nbseal.kernel.display import ProgressDisplay
from nbseal.kernel.execution import Execution
from nbseal.kernel.grants import Grants
from nbseal.kernel.pool import EnvironmentPool, EnvironmentSlot
from nbseal.kernel.subkernel import SubKernel
from nbseal.lock import Lock
from nbseal.plan import Declaration, EnvironmentSpec, NotebookState
from nbseal.progress import Progress
from nbseal.sources import UNRESTRICTED, SourcePolicy

__all__ = ["Cells"]

log = logging.getLogger("nbseal.kernel")


@dataclass
class Cells:
    io: ProxyIO
    pool: EnvironmentPool
    grants: Grants
    data_store: DataStore
    # Where relative paths in directives start.
    notebook_dir: Path
    # What the cells run so far have declared, in the order they ran.
    state: NotebookState = field(default_factory=NotebookState)

    async def prepare(self, execution: Execution) -> tuple[SubKernel, str] | None:
        """Apply the cell's directives; the kernel and code to run, or None."""
        cell = parse_cell(execution.code)
        self._validate(cell.directives)
        if not execution.silent:
            self.io.sockets.send(
                "iopub", "execute_input", execution.input_content(), execution.header
            )
        for directive in cell.directives:
            await self._apply(directive, execution)
        if cell.directives and not cell.has_code:
            return None
        slot = self.pool.current_slot
        kernel = await self.pool.kernel_for(slot, show_in=execution.header)
        slot.ran = True
        return kernel, cell.code

    def express(self, execution: Execution) -> SubKernel | None:
        """The running kernel a cell goes to as it is, or None if the cell needs preparing.

        A cell goes as it is when it holds no directive and its environment's
        kernel runs under the sandbox's present grants (nothing to build,
        start, restart or say first).
        """
        slot = self.pool.current_slot
        kernel = slot.live_kernel
        if kernel is None or slot.failure is not None or not self.pool.ready_as_is(slot):
            return None
        try:
            # Every cell is parsed: directives are `#seal` lines, PEP 723 blocks
            # and Guix-Jupyter's `;;guix` lines alike.
            if parse_cell(execution.code).directives:
                return None
        except NbsealError:
            return None  # prepare() reports it as the cell's error
        slot.ran = True
        return kernel

    def _validate(self, directives: tuple[Directive, ...]) -> None:
        """Check a cell's directives against the notebook before any takes effect."""
        trial = self.state.copy()
        for directive in directives:
            trial.apply(directive)
            if isinstance(directive, ShareDirective):
                self.grants.share_path(directive)  # raises for a missing path

    async def _apply(self, directive: Directive, execution: Execution) -> None:
        declared = self.state.apply(directive)
        if declared is not None:
            await self._define(declared, execution)
        elif isinstance(directive, HelpDirective):
            self.io.sockets.print(execution.header, HELP_TEXT)
        elif isinstance(directive, DescribeDirective):
            await self.pool.settle(execution.header)
            self.io.sockets.send("iopub", "display_data", self._describe(), execution.header)
        elif isinstance(directive, EnvSwitchDirective):
            self.pool.current = self.state.current
        elif isinstance(directive, AllowDirective):
            self.grants.network = self.state.network
            self.grants.javascript = self.state.javascript
        elif isinstance(directive, ShareDirective):
            self.grants.share(directive)
        elif isinstance(directive, LimitDirective):
            self.grants.limits = self.state.limits
        elif isinstance(directive, DataDirective):
            await self._fetch_data(directive, execution)

    def _describe(self) -> dict[str, Any]:
        bundle = describe_bundle(
            self.pool.in_notebook_order(), self.pool.current, self.grants.summary()
        )
        return {"data": bundle, "metadata": {}, "transient": {}}

    async def _fetch_data(self, directive: DataDirective, execution: Execution) -> None:
        """Fetch (or reuse) declared data and put it in every kernel's working directory."""
        url = directive.url
        if "://" not in url and not url.startswith("doi:"):
            url = str((self.notebook_dir / Path(url).expanduser()).resolve())
        progress = Progress(f"data {directive.name}")
        display = ProgressDisplay(self.io.sockets, execution.header)
        progress.subscribe(display.on_event)
        policy = (
            SourcePolicy.for_notebook(
                self.notebook_dir, self.grants.shares, network=self.grants.network
            )
            if self.grants.sealed
            else UNRESTRICTED
        )
        try:
            stored = await self.data_store.ensure(url, directive.sha256, progress, policy)
        except NbsealError as exc:
            progress.fail(exc.message)
            raise
        how = "from the store" if stored.reused else "fetched, verified and stored"
        progress.finish(
            f"{stored.size / 1e6:.1f} MB, {how} in {progress.elapsed():.1f} s "
            f"(sha256 {stored.sha256[:12]})"
        )
        if not display.shown and progress.last is not None:
            display.show(progress.last)  # a data cell always ends with its summary
        self.grants.add_data(directive.name, stored.path)

    async def _define(self, declaration: Declaration, execution: Execution) -> None:
        """Make ``declaration`` current; build and start it, showing progress here."""
        name = declaration.name
        slot = self.pool.environments.get(name)
        self.pool.current = name
        if slot is None or slot.declaration != declaration:
            spec, lock = self._choose_lock(declaration, execution)
            if slot is not None and slot.kernel is not None:
                await slot.kernel.shutdown()
                if slot.ran:
                    self.io.sockets.print(
                        execution.header,
                        f"nbseal: environment {name!r} changed; its kernel was restarted",
                    )
            slot = EnvironmentSlot(declaration, spec, lock)
            self.pool.environments[name] = slot
        await self.pool.kernel_for(slot, show_in=execution.header, summary=True)

    def _choose_lock(
        self, declaration: Declaration, execution: Execution
    ) -> tuple[EnvironmentSpec, Lock | None]:
        """Use the notebook's lock while it fits; say why when it does not."""
        spec, lock = self.pool.fitting(declaration)
        if spec is not None:
            return spec, lock
        name = declaration.name
        candidates = self.pool.stored.get(name, [])
        if candidates:
            self.io.sockets.print(
                execution.header,
                f"nbseal: the lock stored in this notebook for {name!r} is stale "
                f"({declaration.staleness(candidates[0])}); it is not used. "
                "Run `nbseal lock NOTEBOOK` to store a new one.",
            )
        if declaration.pin is not None:
            return declaration.spec(), None
        instant = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        backend = backend_for_requirements(declaration.requirements)
        self.io.sockets.print(execution.header, "nbseal: " + backend.unpinned_note(name, instant))
        return declaration.spec(instant), None
