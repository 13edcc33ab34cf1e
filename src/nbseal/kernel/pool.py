"""The environment pool: the notebook's environments and, once started, their kernels.

An :class:`EnvironmentSlot` is one environment as the notebook declares it,
with its lock, its store entry and its kernel. The pool builds and starts a
slot's kernel on demand (showing the build's progress in the cell that asked),
restarts it when the sandbox's grants changed, starts the first kernels before
any cell asks, and stops them all at the end. A build that failed is not
tried again for the same declaration: the first cell that needed it shows
the whole error, later ones a short one naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq.asyncio

from nbseal.backends import backend_for
from nbseal.datastore import DataStore
from nbseal.environments import realize, resolve
from nbseal.errors import EnvironmentFailedError, KernelStartError, NbsealError
from nbseal.kernel.app import ProxyIO
from nbseal.kernel.display import ProgressDisplay, already_running
from nbseal.kernel.grants import Grants
from nbseal.kernel.subkernel import SubKernel
from nbseal.kernel.warm import WarmPolicy
from nbseal.kernel.wire import RawMessage
from nbseal.lock import Lock
from nbseal.notebook import code_sources, lock_output, read_notebook_json, stored_locks
from nbseal.plan import (
    DEFAULT_ENV_NAME,
    Declaration,
    EnvironmentSpec,
    NotebookPlan,
    default_declaration,
    plan_notebook,
)
from nbseal.progress import Progress
from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.limits import DEFAULT_LIMITS
from nbseal.store import BuiltEnvironment, EnvironmentStore
from nbseal.timeline import mark

__all__ = ["EnvironmentPool", "EnvironmentSlot"]

log = logging.getLogger("nbseal.kernel")

UNSEALED_MIME = "application/vnd.nbseal.unsealed+json"

# How often a build in progress says it is still going (a silent sdist compile).
TICK_SECONDS = 10.0

# What a sub-kernel says, and its death: both go to the router.
MessageHandler = Callable[[SubKernel, str, RawMessage], None]
ExitHandler = Callable[[SubKernel], None]


@dataclass
class BuildFailure:
    """A build that failed for a slot's declaration: told in full once, then in short."""

    error: NbsealError
    told: bool = False

    @property
    def cause(self) -> str:
        return str(getattr(self.error, "cause", "")) or self.error.message

    def for_cell(self, environment: str) -> NbsealError:
        if not self.told:
            self.told = True
            return self.error
        return EnvironmentFailedError.earlier(environment, self.cause)


@dataclass
class EnvironmentSlot:
    """An environment of the notebook and, once started, its kernel."""

    # What the notebook wrote, to tell a redefinition from a re-run.
    declaration: Declaration
    spec: EnvironmentSpec
    lock: Lock | None = None
    built: BuiltEnvironment | None = None
    kernel: SubKernel | None = None
    starting: asyncio.Task[SubKernel] | None = None
    progress: Progress | None = None
    # Whether any cell ran in its kernel (a restart then loses state).
    ran: bool = False
    # The sandbox policy its kernel was started under.
    policy: SandboxPolicy | None = None
    # Whether a define cell showed the start's summary; later ones must not repeat it.
    summarised: bool = False
    # Its build failed: not tried again while the declaration stays the same.
    failure: BuildFailure | None = None
    # When its kernel last became ready (loop time): a warm kernel's age.
    started_at: float = 0.0

    @property
    def state(self) -> str:
        """``warm`` (started, no cell ran in it), ``running``, or ``not started``."""
        if self.live_kernel is None:
            return "not started"
        return "running" if self.ran else "warm"

    @property
    def live_kernel(self) -> SubKernel | None:
        return self.kernel if self.kernel is not None and self.kernel.alive else None


@dataclass
class KernelPlace:
    """Where sub-kernels live: the proxy's zmq context and folders."""

    context: zmq.asyncio.Context
    runtime_dir: Path
    workdir: Path


class EnvironmentPool:
    def __init__(
        self,
        io: ProxyIO,
        store: EnvironmentStore,
        grants: Grants,
        place: KernelPlace,
        *,
        on_message: MessageHandler,
        on_exit: ExitHandler,
        warm: WarmPolicy | None = None,
    ) -> None:
        self.io = io
        self.store = store
        self.grants = grants
        self.place = place
        self.on_message = on_message
        self.on_exit = on_exit
        # Locks the notebook file holds (metadata.nbseal, then cell outputs).
        self.stored: dict[str, list[Lock]] = {}
        # Start the default kernel at once unless the notebook never uses it.
        self.prestart_default = True
        # Another environment to start at once: the first code cell's, when stored.
        self.prestart_first: EnvironmentSlot | None = None
        # The other stored environments, warmed after those while the budget allows.
        self.warm_candidates: list[EnvironmentSlot] = []
        self.declared: list[str] = []  # environment names in the notebook's order
        self.warm = warm
        self.environments: dict[str, EnvironmentSlot] = {}
        self.current = DEFAULT_ENV_NAME
        self.closing = False
        self._unsealed_noted = False
        self._kernel_index = 0

    # -- the notebook file -------------------------------------------------
    def load(self, path: Path | None, data_store: DataStore) -> None:
        """Take the default environment and the stored locks from the notebook file."""
        default = self._read_notebook(path, data_store)
        spec, lock = self.fitting(default)
        self.environments[DEFAULT_ENV_NAME] = EnvironmentSlot(default, spec or default.spec(), lock)

    def _read_notebook(self, path: Path | None, data_store: DataStore) -> Declaration:
        if path is None:
            return default_declaration()
        try:
            notebook = read_notebook_json(path)
            self.stored = stored_locks(notebook)
            plan = plan_notebook(code_sources(notebook))
        except NbsealError as exc:
            # The cell that holds the problem reports it when it runs.
            log.warning("reading %s: %s", path, exc.message)
            return default_declaration()
        log.info("notebook %s holds locks for %s", path, ", ".join(self.stored) or "nothing")
        mark("proxy", f"notebook read: locks for {', '.join(self.stored) or 'nothing'}")
        self.prestart_default = DEFAULT_ENV_NAME in plan.used
        self.prestart_first = self._stored_first_environment(plan)
        self.warm_candidates = self._stored_environments(plan)
        self.declared = list(plan.environments)
        # Data already stored is in place before the first kernel starts, so
        # the pre-started kernel need not restart when its cell runs.
        for data in plan.data:
            stored = data_store.lookup(data.sha256)
            if stored is not None:
                self.grants.add_data(data.name, stored)
        return plan.environments.get(DEFAULT_ENV_NAME) or default_declaration()

    def _stored_first_environment(self, plan: NotebookPlan) -> EnvironmentSlot | None:
        """The first code cell's environment, if it is not the default one and can start now."""
        first = plan.first_used
        if first is None or first.name == DEFAULT_ENV_NAME:
            return None
        return self._startable(plan, first)

    def _stored_environments(self, plan: NotebookPlan) -> list[EnvironmentSlot]:
        """The other declared environments that can start now, in the notebook's order."""
        first = plan.first_used.name if plan.first_used is not None else DEFAULT_ENV_NAME
        slots = (
            self._startable(plan, declaration)
            for name, declaration in plan.environments.items()
            if name not in (DEFAULT_ENV_NAME, first)
        )
        return [slot for slot in slots if slot is not None]

    def _startable(self, plan: NotebookPlan, declaration: Declaration) -> EnvironmentSlot | None:
        """A slot for ``declaration`` if its kernel can start before its cell runs.

        Only with a lock stored in the notebook that still fits and an entry
        in the store: a kernel start then needs no resolution and no build, so
        it can overlap the frontend's own start-up (and is wasted at most).
        With network, shares or limits declared the kernel would restart at
        their cell, so it is not started early.
        """
        if plan.network or plan.shares or plan.limits != DEFAULT_LIMITS:
            return None
        spec, lock = self.fitting(declaration)
        if spec is None or lock is None or self.store.lookup(lock) is None:
            return None
        return EnvironmentSlot(declaration, spec, lock)

    def fitting(self, declaration: Declaration) -> tuple[EnvironmentSpec | None, Lock | None]:
        """The spec and lock to use when the notebook holds a lock that still fits."""
        lock = declaration.fitting(self.stored.get(declaration.name, []))
        if lock is None:
            return None, None
        return declaration.spec(lock.exclude_newer), lock

    # -- what runs ----------------------------------------------------------
    def in_notebook_order(self) -> dict[str, EnvironmentSlot]:
        """``default``, then the rest as declared (not as warm-ups happened to start them)."""
        rank = {name: index for index, name in enumerate(self.declared)}
        rank[DEFAULT_ENV_NAME] = -1
        ordered = sorted(self.environments.items(), key=lambda item: rank.get(item[0], len(rank)))
        return dict(ordered)

    @property
    def current_slot(self) -> EnvironmentSlot:
        return self.environments[self.current]

    def current_kernel(self) -> SubKernel | None:
        return self.current_slot.live_kernel

    def live_kernels(self) -> list[SubKernel]:
        return [k for k in (s.live_kernel for s in self.environments.values()) if k is not None]

    def cancel_current_start(self) -> None:
        starting = self.current_slot.starting
        if starting is not None and not starting.done():
            starting.cancel()

    # -- start and stop -----------------------------------------------------
    def prestart(self, enabled: bool) -> None:
        """Build and start the kernels the notebook will need first, without waiting for a cell."""
        if not enabled:
            return
        if self.prestart_default:
            self.io.background.spawn(self._prestart(self.environments[DEFAULT_ENV_NAME]))
        first = self.prestart_first
        if first is not None:
            self.environments[first.declaration.name] = first
            self.io.background.spawn(self._prestart(first))
        if self.warm is not None:
            self.io.background.spawn(self._warm_up(self.warm))
            self.io.background.spawn(self._reap_idle(self.warm))

    async def _prestart(self, slot: EnvironmentSlot) -> None:
        # A failure is reported by the cell that needs the environment.
        with contextlib.suppress(Exception):
            await self.kernel_for(slot)

    async def _warm_up(self, warm: WarmPolicy) -> None:
        """Start the other stored environments' kernels, one at a time, within the budget."""
        for slot in self.warm_candidates:
            # The first kernels go first: a cell may be waiting for them.
            starting = [s.starting for s in self.environments.values() if s.starting is not None]
            pending = [task for task in starting if not task.done()]
            if pending:
                await asyncio.wait(pending)
            name = slot.declaration.name
            if self.closing or name in self.environments:
                continue  # a cell defined it meanwhile (or redefined it): it is the cell's
            sizes = [k.resident_mb for k in self.live_kernels()]
            if not warm.room_for_another(size or 0.0 for size in sizes):
                log.info(
                    "not warming %s: the kernels use %.0f MB of %.0f",
                    name,
                    sum(size or 0.0 for size in sizes),
                    warm.budget_mb,
                )
                return
            self.environments[name] = slot
            await self._prestart(slot)

    async def _reap_idle(self, warm: WarmPolicy) -> None:
        """Stop warm kernels no cell has used for ``warm.idle_seconds``."""
        loop = asyncio.get_running_loop()
        while not self.closing:
            await asyncio.sleep(warm.reap_every)
            for name, slot in list(self.environments.items()):
                kernel = slot.live_kernel
                idle = loop.time() - slot.started_at
                if kernel is None or slot.ran or name == self.current or idle < warm.idle_seconds:
                    continue
                log.info("stopping the warm kernel of %s: unused for %.0f s", name, idle)
                slot.kernel = None
                await kernel.shutdown()

    async def settle(self, parent: dict[str, Any]) -> None:
        """Let kernels being started (the pre-start) finish, so a table does not race them.

        ``#seal describe`` then shows the same thing however fast the machine
        is; a build in progress shows its progress in the describe cell.
        """
        for slot in list(self.environments.values()):
            if slot.starting is not None and not slot.starting.done():
                try:
                    await self.kernel_for(slot, show_in=parent)
                except Exception:
                    if slot.failure is not None:  # the next cell that needs it tells it
                        slot.failure.told = False

    async def stop_all(self) -> None:
        slots = list(self.environments.values())
        starting = [s.starting for s in slots if s.starting is not None and not s.starting.done()]
        for task in starting:
            task.cancel()
        # A start cancelled but not awaited would leave its sockets open (and
        # its sandbox running) while the context is torn down.
        if starting:
            await asyncio.wait(starting, timeout=10)
        kernels = [s.kernel for s in slots if s.kernel is not None]
        # Where nothing a kernel does after its shutdown_reply can be seen, its
        # teardown (0.1-0.4 s for ipykernel) is not waited for.
        stops = (k.shutdown(wait_for_exit=not self.grants.traceless()) for k in kernels)
        await asyncio.gather(*stops, return_exceptions=True)
        for slot in slots:
            slot.kernel = None

    async def kernel_for(
        self,
        slot: EnvironmentSlot,
        show_in: dict[str, Any] | None = None,
        summary: bool = False,
    ) -> SubKernel:
        """The running kernel of ``slot``, built and started if need be.

        With ``show_in`` (a request's header), a build's progress is shown in
        that cell; with ``summary`` the cell always ends with the one-line
        summary and the lock (saved with the notebook, where the kernel and
        ``nbseal lock`` find it again).
        """
        display = ProgressDisplay(self.io.sockets, show_in) if show_in is not None else None
        if show_in is not None:
            self._note_unsealed(show_in)
        await self._apply_policy(slot, show_in)
        running = slot.live_kernel is not None
        if not running and slot.failure is not None:
            failure = slot.failure
            raise failure.for_cell(slot.spec.name) if show_in is not None else failure.error
        if not running:
            if slot.starting is None or slot.starting.done():
                slot.progress = Progress(slot.spec.name)
                slot.starting = asyncio.ensure_future(self._start(slot, slot.progress))
            if display is not None and slot.progress is not None:
                slot.progress.subscribe(display.on_event)
            try:
                await asyncio.shield(slot.starting)
            except NbsealError:
                if slot.failure is not None and show_in is not None:
                    slot.failure.told = True
                raise
            finally:
                if display is not None and slot.progress is not None:
                    slot.progress.unsubscribe(display.on_event)
        kernel = slot.kernel
        if kernel is None:
            raise KernelStartError.did_not_start(slot.spec.name)
        if self.grants.sealed and slot.policy != self.grants.policy():
            # Started (by the pre-start) before this cell's grants or data existed.
            return await self.kernel_for(slot, show_in, summary)
        if display is not None and summary and slot.lock:
            if running and slot.summarised:
                last = already_running(slot.spec.name, slot.lock, slot.built)
            else:
                last = slot.progress.last if slot.progress is not None else None
            if last is not None and last.done:
                display.show(last, lock_output(slot.spec.name, slot.lock))
                slot.summarised = True
        return kernel

    def ready_as_is(self, slot: EnvironmentSlot) -> bool:
        """Whether ``slot``'s kernel may run a cell with nothing said or done first."""
        if not self.grants.sealed:
            return self._unsealed_noted
        return slot.policy == self.grants.policy()

    def _note_unsealed(self, parent: dict[str, Any]) -> None:
        """An unsealed run says so in the notebook's outputs, once per session."""
        if self.grants.sealed or self._unsealed_noted:
            return
        self._unsealed_noted = True
        text = (
            "nbseal: this session runs WITHOUT the sandbox (--no-sandbox): kernels can "
            "reach the network and the user's files, so outputs may depend on them"
        )
        content = {
            "data": {"text/plain": text, UNSEALED_MIME: {"sealed": False}},
            "metadata": {},
            "transient": {},
        }
        self.io.sockets.send("iopub", "display_data", content, parent)

    async def _apply_policy(self, slot: EnvironmentSlot, show_in: dict[str, Any] | None) -> None:
        """A kernel started under other grants is restarted before it runs more code."""
        kernel = slot.live_kernel
        if kernel is None or not self.grants.sealed or slot.policy == self.grants.policy():
            return
        await kernel.shutdown()
        slot.kernel = None
        if slot.ran and show_in is not None:
            self.io.sockets.print(
                show_in,
                f"nbseal: the sandbox of {slot.spec.name!r} changed "
                f"({self.grants.summary()}); its kernel was restarted",
            )
        slot.ran = False

    async def _start(self, slot: EnvironmentSlot, progress: Progress) -> SubKernel:
        ticker = asyncio.ensure_future(_tick(progress))
        try:
            try:
                mark("proxy", f"environment {slot.spec.name}: starting")
                if slot.lock is None:
                    slot.lock = await resolve(slot.spec, self.store, progress)
                if slot.built is None:
                    slot.built = await realize(slot.spec, self.store, progress, lock=slot.lock)
                backend = backend_for(slot.lock.backend)
                command = backend.kernel_command(slot.built.path, slot.spec.kernel)
            except NbsealError as exc:
                slot.failure = BuildFailure(exc)
                raise
            slot.policy = self.grants.policy()
            launcher = backend.launcher(slot.policy, sealed=self.grants.sealed)
            self._kernel_index += 1
            kernel = SubKernel(
                env_name=slot.spec.name,
                command=command,
                env_path=slot.built.path,
                session=self.io.session,
                context=self.place.context,
                runtime_dir=self.place.runtime_dir,
                workdir=self.place.workdir,
                launcher=launcher,
                handler=self.on_message,
                index=self._kernel_index,
                # With the network, a kernel could reach the frontend's ports:
                # it must not hold the key that signs the frontend's requests.
                private_key=self.grants.network,
            )
            await kernel.start()
        except NbsealError as exc:
            # The cell's error says what and why, once: the display says only when.
            progress.fail(f"failed after {progress.elapsed():.1f} s ({exc.ename}, below)")
            raise
        finally:
            ticker.cancel()
        mark("proxy", f"environment {slot.spec.name}: kernel ready")
        slot.kernel = kernel
        slot.started_at = asyncio.get_running_loop().time()
        self.io.background.spawn(self._watch(slot, kernel))
        return kernel

    async def _watch(self, slot: EnvironmentSlot, kernel: SubKernel) -> None:
        await asyncio.shield(kernel.exited)
        if slot.kernel is kernel:
            slot.kernel = None
        self.on_exit(kernel)
        await kernel.close()
        if not (self.closing or kernel.stopping):
            log.warning("kernel of %s ended (%s)", kernel.env_name, kernel.exit_description())


async def _tick(progress: Progress) -> None:
    """A step that lasts (an sdist compiling for minutes) says every while that it goes on."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        last = progress.last
        if last is not None and not last.done:
            progress.step(last.step, last.fraction)
