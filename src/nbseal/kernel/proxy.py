"""The nbseal proxy kernel: speaks Jupyter to the frontend, relays to real kernels.

This module wires the proxy's parts together; each has a module of its own:

- :mod:`~nbseal.kernel.app`: the sockets to the frontend, the heartbeat, the
  parent watch, the background tasks;
- :mod:`~nbseal.kernel.frontend`: the protocol, a handler per request type;
- :mod:`~nbseal.kernel.router`: routes, comms, stdin and the iopub relay
  between the frontend and the sub-kernels;
- :mod:`~nbseal.kernel.execution`: the queue of execute requests, one
  :class:`~nbseal.kernel.execution.Execution` per request;
- :mod:`~nbseal.kernel.cell`: what a cell's ``#seal`` directives do;
- :mod:`~nbseal.kernel.pool`: the notebook's environments and their kernels.

docs/architecture.md follows a directive and an execute_request through them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq.asyncio

from nbseal.datastore import DataStore
from nbseal.errors import NbsealError
from nbseal.kernel.app import (
    Background,
    FrontendSockets,
    ProxyIO,
    configure_logging,
    watch_parent,
)
from nbseal.kernel.cell import Cells
from nbseal.kernel.execution import ExecutionQueue
from nbseal.kernel.frontend import FrontendProtocol
from nbseal.kernel.grants import Grants
from nbseal.kernel.hints import missing_file_hint
from nbseal.kernel.pool import UNSEALED_MIME, EnvironmentPool, KernelPlace
from nbseal.kernel.router import Router
from nbseal.kernel.sealing import OutputSeal
from nbseal.kernel.session import WireSession
from nbseal.kernel.warm import WarmPolicy
from nbseal.runtime_dirs import make_runtime_dir, sweep_orphans
from nbseal.sandbox import headstart
from nbseal.sandbox.identity import sandbox_identity
from nbseal.store import EnvironmentStore
from nbseal.timeline import mark
from nbseal.uv import uv_cache_dir

__all__ = ["UNSEALED_MIME", "ProxyConfig", "ProxyKernel", "configure_logging"]

log = logging.getLogger("nbseal.kernel")


@dataclass
class ProxyConfig:
    store: EnvironmentStore = field(default_factory=EnvironmentStore)
    data_store: DataStore = field(default_factory=DataStore)
    notebook_path: str | None = None
    prestart: bool = True
    # Run kernels under bubblewrap; False only by explicit opt-out (--no-sandbox).
    sandbox: bool = True
    # Keep the kernels' working directory here instead of a removed scratch dir.
    keep_workdir: Path | None = None
    # Where the runtime folder goes (nbseal run's own folder); else TMPDIR.
    runtime_parent: Path | None = None
    # How far to warm the notebook's other stored environments (kernel/warm.py).
    warm: WarmPolicy = field(default_factory=lambda: _warm_policy())


def _warm_policy() -> WarmPolicy:
    try:
        return WarmPolicy.from_environ()
    except NbsealError as exc:
        log.warning("%s; using the defaults", exc.render().replace("\n", "; "))
        return WarmPolicy()


class ProxyKernel:
    def __init__(self, connection: dict[str, Any], config: ProxyConfig | None = None) -> None:
        self.connection = connection
        self.config = config or ProxyConfig()
        session = WireSession(
            str(connection.get("key", "")).encode(),
            str(connection.get("signature_scheme", "hmac-sha256")),
            username="nbseal",
        )
        self.context = zmq.asyncio.Context()
        # Sockets, sub-kernels' connection files and the scratch workdir; what
        # killed proxies left behind is removed first.
        sweep_orphans()
        # Build folders of killed builds (run by root, the sandbox's uid owns them).
        sweep_orphans(uv_cache_dir(), also_owned_by=sandbox_identity().host_uid)
        # The head start's folder, if it made one: its kernel's sockets are there.
        self.runtime_dir = headstart.runtime_dir() or make_runtime_dir(
            "nbseal-", self.config.runtime_parent
        )
        # Set when the process that started this kernel is gone.
        self.orphaned = False
        # Set when the frontend stops this kernel to start it again.
        self.restarting = False
        # jupyter_server starts kernels in the notebook's folder.
        self.notebook_dir = Path.cwd()
        workdir = (self.config.keep_workdir or self.runtime_dir / "work").resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        self.grants = Grants(
            workdir,
            self.notebook_dir,
            sealed=self.config.sandbox,
            workdir_kept=self.config.keep_workdir is not None,
        )
        self._stopping = asyncio.Event()
        self.sockets = FrontendSockets(session, self.context)
        io = ProxyIO(session, self.sockets, Background())
        self.background = io.background
        self.pool = EnvironmentPool(
            io,
            self.config.store,
            self.grants,
            KernelPlace(self.context, self.runtime_dir, workdir),
            on_message=lambda kernel, channel, message: self.router.from_kernel(
                kernel, channel, message
            ),
            on_exit=lambda kernel: self.router.forget(kernel),
            warm=self.config.warm,
        )
        self.pool.load(self.notebook_path(), self.config.data_store)
        self.queue = ExecutionQueue(io)
        grants = self.grants
        seal = OutputSeal(session, active=lambda: grants.sealed and not grants.javascript)
        notebook = self.notebook_path()
        name = notebook.name if notebook is not None else "NOTEBOOK"
        self.router = Router(
            io,
            self.pool,
            self.queue,
            seal,
            explain=lambda error: missing_file_hint(error, self.notebook_dir, name),
        )
        self.cells = Cells(io, self.pool, self.grants, self.config.data_store, self.notebook_dir)
        self.frontend = FrontendProtocol(io, self.router, on_shutdown=self._shutdown_requested)

    def notebook_path(self) -> Path | None:
        """The notebook this kernel runs: ``nbseal run``'s path or ``JPY_SESSION_NAME``."""
        name = self.config.notebook_path or os.environ.get("JPY_SESSION_NAME", "")
        if not name:
            return None
        path = Path(name)
        # jupyter_server passes the path relative to its root; the kernel's
        # cwd is the notebook's folder.
        for candidate in (path, self.notebook_dir / path, self.notebook_dir / path.name):
            if candidate.is_file():
                return candidate
        return None

    async def run(self) -> None:
        self.sockets.bind(self.connection)
        mark("proxy", "sockets bound")
        self.background.spawn(self.sockets.welcome_subscribers())
        for channel in ("shell", "control", "stdin"):
            self.background.spawn(self.frontend.serve(channel))
        self.background.spawn(self.queue.serve(self.cells.prepare, self.cells.express))
        self.pool.prestart(self.config.prestart)
        if not self.config.prestart:
            await asyncio.to_thread(headstart.discard)
        self.background.spawn(watch_parent(self._orphan))
        await self._stopping.wait()
        self.pool.closing = True
        self.queue.stop()
        await self.pool.stop_all()
        await asyncio.to_thread(headstart.discard)  # a head start no kernel took
        self.background.cancel_all()
        await asyncio.sleep(0)  # let the cancelled tasks end
        # The shutdown's replies are queued: closing with a linger sends them,
        # and destroy() below waits for them (it only drops what is still open).
        self.sockets.close()
        await asyncio.sleep(0)  # let the loop drop the closed sockets' readers
        # destroy, not term: a socket left open anywhere must not hang the exit.
        self.context.destroy(linger=0)
        self.grants.clear_data_mounts()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)  # holds the scratch workdir

    def _shutdown_requested(self, restart: bool) -> None:
        self.restarting = restart
        self._stopping.set()

    def request_stop(self) -> None:
        """Stop serving (SIGTERM): every sub-kernel is shut down on the way out."""
        self.pool.closing = True
        self._stopping.set()

    def _orphan(self) -> None:
        self.orphaned = True
        self.request_stop()
