"""Errors of verifying many notebooks: a notebook's time limit, a cluster, an interrupted run."""

from __future__ import annotations

from pathlib import Path

from nbseal.errors.base import NbsealError, Wording

__all__ = ["ClusterError", "NotebookCancelledError", "NotebookTimeoutError", "RemoteProblem"]

_TIMED_OUT = Wording(
    "{path} timed out after {seconds:g} s (--timeout-notebook); it was cut {where}",
    hint="raise --timeout-notebook, or mark a slow cell NBVAL_SKIP",
)


class NotebookTimeoutError(NbsealError, TimeoutError):
    """A notebook ran past ``--timeout-notebook``; its kernels were stopped.

    Built by :meth:`after`, which records ``path``, ``seconds`` and the
    ``cell`` that was running when the notebook was cut (None before any).
    """

    path: Path
    seconds: float
    cell: int | None

    @classmethod
    def after(cls, path: Path, seconds: float, cell: int | None) -> NotebookTimeoutError:
        where = f"in cell {cell}" if cell is not None else "before its first cell ran"
        return cls.saying(_TIMED_OUT, path=path, seconds=seconds, cell=cell, where=where)


_INTERRUPTED = Wording(
    "{path} was not verified: the run was interrupted",
    hint="run `nbseal verify` again on the notebooks not verified",
)


class NotebookCancelledError(NbsealError, InterruptedError):
    """The run was interrupted before this notebook was verified (``path``)."""

    path: Path

    @classmethod
    def interrupted(cls, path: Path) -> NotebookCancelledError:
        return cls.saying(_INTERRUPTED, path=path)


_DASK_MISSING = Wording(
    "--cluster and --scheduler need Dask's distributed scheduler ({missing} is missing)",
    hint="pip install 'nbseal[dask]'",
)
_BAD_CLUSTER = Wording(
    "--cluster {spec!r} is not a cluster nbseal can start",
    hint="write --cluster local:N (N worker processes on this machine), or "
    "start a cluster yourself and pass --scheduler ADDRESS",
)
_UNREACHABLE = Wording(
    "cannot reach the Dask scheduler at {address}",
    context="{reason}",
    hint="check the address (tcp://HOST:8786) and that the scheduler is running",
)
_TASK_FAILED = Wording(
    "the worker could not verify {path}",
    context="{reason}",
    hint="every worker needs nbseal installed, the notebook at the same path, "
    "bwrap and a writable NBSEAL_CACHE_DIR (docs/scale.md)",
)
_WORKERS_DIED = Wording(
    "the workers verifying {path} died, one after another",
    context="{reason}",
    hint="the notebook may take a worker's memory: give workers more, "
    "or cap the notebook with #seal limit memory=SIZE",
)


class ClusterError(NbsealError, RuntimeError):
    """A Dask cluster could not be used, or could not run one notebook's task.

    Built by :meth:`dask_missing`, :meth:`bad_cluster` (records ``spec``),
    :meth:`unreachable` (records ``address``), :meth:`task_failed` and
    :meth:`workers_died` (both record ``path``).
    """

    spec: str = ""
    address: str = ""
    path: Path | None = None

    @classmethod
    def dask_missing(cls, missing: str) -> ClusterError:
        """``missing`` (the module that did not import) is part of the optional Dask extra."""
        return cls.saying(_DASK_MISSING, missing=missing)

    @classmethod
    def bad_cluster(cls, spec: str) -> ClusterError:
        return cls.saying(_BAD_CLUSTER, spec=spec)

    @classmethod
    def unreachable(cls, address: str, reason: str) -> ClusterError:
        return cls.saying(_UNREACHABLE, address=address, reason=reason)

    @classmethod
    def task_failed(cls, path: Path, reason: str) -> ClusterError:
        """The worker could not run the task of ``path``; ``reason`` is what it raised."""
        return cls.saying(_TASK_FAILED, path=path, reason=reason)

    @classmethod
    def workers_died(cls, path: Path, reason: str) -> ClusterError:
        """Every worker that took ``path`` died (the scheduler's allowed failures ran out)."""
        return cls.saying(_WORKERS_DIED, path=path, reason=reason)


class RemoteProblem(NbsealError):
    """A notebook's problem as a worker reported it: its text and its class's name."""

    def __init__(self, rendered: str, *, ename: str) -> None:
        super().__init__(rendered)
        self._ename = ename

    @property
    def ename(self) -> str:
        return self._ename
