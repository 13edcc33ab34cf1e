"""Errors of verifying many notebooks: a notebook's time limit, a cluster, an interrupted run."""

from __future__ import annotations

from pathlib import Path

from nbseal.errors.base import NbsealError

__all__ = ["ClusterError", "NotebookCancelledError", "NotebookTimeoutError", "RemoteProblem"]


class NotebookTimeoutError(NbsealError, TimeoutError):
    """A notebook ran past ``--timeout-notebook``; its kernels were stopped.

    Built by :meth:`after`, which records ``path``, ``seconds`` and the
    ``cell`` that was running when the notebook was cut (None before any).
    """

    def __init__(
        self, message: str, *, path: Path, seconds: float, cell: int | None, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.seconds = seconds
        self.cell = cell

    @classmethod
    def after(cls, path: Path, seconds: float, cell: int | None) -> NotebookTimeoutError:
        where = f"in cell {cell}" if cell is not None else "before its first cell ran"
        return cls(
            f"{path} timed out after {seconds:g} s (--timeout-notebook); it was cut {where}",
            hint="raise --timeout-notebook, or mark a slow cell NBVAL_SKIP",
            path=path,
            seconds=seconds,
            cell=cell,
        )


class NotebookCancelledError(NbsealError, InterruptedError):
    """The run was interrupted before this notebook was verified (``path``)."""

    def __init__(self, message: str, *, path: Path, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.path = path

    @classmethod
    def interrupted(cls, path: Path) -> NotebookCancelledError:
        return cls(
            f"{path} was not verified: the run was interrupted",
            hint="run `nbseal verify` again on the notebooks not verified",
            path=path,
        )


class ClusterError(NbsealError, RuntimeError):
    """A Dask cluster could not be used, or could not run one notebook's task.

    Built by :meth:`dask_missing`, :meth:`bad_cluster` (records ``spec``),
    :meth:`unreachable` (records ``address``), :meth:`task_failed` and
    :meth:`workers_died` (both record ``path``).
    """

    def __init__(
        self,
        message: str,
        *,
        context: str = "",
        hint: str = "",
        spec: str = "",
        address: str = "",
        path: Path | None = None,
    ) -> None:
        super().__init__(message, context=context, hint=hint)
        self.spec = spec
        self.address = address
        self.path = path

    @classmethod
    def dask_missing(cls, missing: str) -> ClusterError:
        """``missing`` (the module that did not import) is part of the optional Dask extra."""
        return cls(
            f"--cluster and --scheduler need Dask's distributed scheduler ({missing} is missing)",
            hint="pip install 'nbseal[dask]'",
        )

    @classmethod
    def bad_cluster(cls, spec: str) -> ClusterError:
        return cls(
            f"--cluster {spec!r} is not a cluster nbseal can start",
            hint="write --cluster local:N (N worker processes on this machine), or "
            "start a cluster yourself and pass --scheduler ADDRESS",
            spec=spec,
        )

    @classmethod
    def unreachable(cls, address: str, reason: str) -> ClusterError:
        return cls(
            f"cannot reach the Dask scheduler at {address}",
            context=reason,
            hint="check the address (tcp://HOST:8786) and that the scheduler is running",
            address=address,
        )

    @classmethod
    def task_failed(cls, path: Path, reason: str) -> ClusterError:
        """The worker could not run the task of ``path``; ``reason`` is what it raised."""
        return cls(
            f"the worker could not verify {path}",
            context=reason,
            hint="every worker needs nbseal installed, the notebook at the same path, "
            "bwrap and a writable NBSEAL_CACHE_DIR (docs/scale.md)",
            path=path,
        )

    @classmethod
    def workers_died(cls, path: Path, reason: str) -> ClusterError:
        """Every worker that took ``path`` died (the scheduler's allowed failures ran out)."""
        return cls(
            f"the workers verifying {path} died, one after another",
            context=reason,
            hint="the notebook may take a worker's memory: give workers more, "
            "or cap the notebook with #seal limit memory=SIZE",
            path=path,
        )


class RemoteProblem(NbsealError):
    """A notebook's problem as a worker reported it: its text and its class's name."""

    def __init__(self, rendered: str, *, ename: str) -> None:
        super().__init__(rendered)
        self._ename = ename

    @property
    def ename(self) -> str:
        return self._ename
