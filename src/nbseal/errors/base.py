"""The base of nbseal's errors, and those of notebooks, kernels, the store and adopt.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "AdoptError",
    "BuildError",
    "DirectiveError",
    "EnvironmentFailedError",
    "KernelDiedError",
    "KernelStartError",
    "NbsealError",
    "NotebookError",
    "ResolutionError",
    "SandboxUnavailableError",
    "StoreError",
    "UvError",
]


class NbsealError(Exception):
    """Base of every error nbseal reports to a user."""

    def __init__(self, message: str, *, context: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        self.hint = hint

    @property
    def ename(self) -> str:
        return type(self).__name__

    def render(self) -> str:
        """Return the error as a few readable lines (no Python stack)."""
        lines = [self.message]
        if self.context:
            lines.append(self.context)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class DirectiveError(NbsealError, ValueError):
    """A ``#seal`` line that does not parse; names the line and the expected form."""

    def __init__(
        self, message: str, *, line: int, text: str, expected: str, cell: int | None = None
    ) -> None:
        where = f"cell {cell}, line {line}" if cell is not None else f"line {line}"
        super().__init__(
            f"{where}: {message}", context=f"    {text.strip()}", hint=f"expected {expected}"
        )
        self.reason = message
        self.line = line
        self.text = text
        self.expected = expected
        self.cell = cell

    def in_cell(self, cell: int) -> DirectiveError:
        """The same error, saying which cell of a notebook it is in."""
        return DirectiveError(
            self.reason, line=self.line, text=self.text, expected=self.expected, cell=cell
        )


class UvError(NbsealError, RuntimeError):
    """uv failed; ``stderr`` holds what it said, ``cause`` its root cause (after the message)."""

    def __init__(self, message: str, *, stderr: str, hint: str = "", cause: str = "") -> None:
        shown = f"{message}: {cause.splitlines()[0]}" if cause else message
        super().__init__(shown, context=stderr.strip(), hint=hint)
        self.stderr = stderr
        self.cause = cause


class ResolutionError(UvError):
    """The resolver could not satisfy an environment's requirements."""

    @classmethod
    def index_unreadable(cls, url: str, reason: str) -> ResolutionError:
        return cls(
            f"the package index did not answer at {url}",
            stderr=reason,
            hint="check the network and UV_DEFAULT_INDEX/UV_INDEX_URL, then run the cell again",
        )


class BuildError(NbsealError, RuntimeError):
    """An environment could not be built from its lock."""

    @classmethod
    def python_missing(cls, wanted: str, here: str, why: str) -> BuildError:
        """No interpreter of ``wanted`` (3.11, or 3.11.7) here, and uv could not get one."""
        series = ".".join(here.split(".")[:2])
        return cls(
            f"the environment needs Python {wanted}; nbseal builds with Python {here} "
            "and uv finds no other",
            context=why,
            hint=f"install it (`uv python install {wanted}`, pyenv or your system's package) "
            f"and point NBSEAL_PYTHON at it, or re-lock for Python {series} with `nbseal lock`",
        )

    @classmethod
    def python_does_not_run(cls, python: str, output: str) -> BuildError:
        return cls(
            f"the interpreter {python} does not run",
            context=output,
            hint="point NBSEAL_PYTHON at an existing Python, or install it",
        )


class StoreError(NbsealError, OSError):
    """The content-addressed store is unusable (permissions, disk, corruption)."""


class KernelStartError(NbsealError, RuntimeError):
    """A sub-kernel did not start or did not answer.

    An environment without the kernel asked for is built by
    :meth:`no_kernel` (which records ``path``) and :meth:`no_kernel_named`
    (``wanted`` and the kernels ``found``); a kernel that was started but
    failed by :meth:`failed_start` (``kernel`` and ``environment``, and its
    log's tail as the context).
    """

    def __init__(
        self,
        message: str,
        *,
        context: str = "",
        hint: str = "",
        path: Path | None = None,
        wanted: str | None = None,
        found: tuple[str, ...] = (),
        kernel: str | None = None,
        environment: str | None = None,
    ) -> None:
        super().__init__(message, context=context, hint=hint)
        self.path = path
        self.wanted = wanted
        self.found = found
        self.kernel = kernel
        self.environment = environment

    @classmethod
    def failed_start(
        cls, kernel: str, environment: str, what: str, *, log: str = "", hint: str = ""
    ) -> KernelStartError:
        """The ``kernel`` of ``environment`` ``what`` (e.g. "exited at start (signal 9)")."""
        return cls(
            f"the kernel {kernel!r} of environment {environment!r} {what}",
            context=log,
            hint=hint,
            kernel=kernel,
            environment=environment,
        )

    @classmethod
    def no_kernel(
        cls, path: Path, *, hint: str, holder: str = "environment", context: str = ""
    ) -> KernelStartError:
        """The ``holder`` (environment, root file system, ...) at ``path`` has no kernelspec."""
        return cls(
            f"the {holder} at {path} holds no Jupyter kernel", context=context, hint=hint, path=path
        )

    @classmethod
    def no_kernel_named(cls, wanted: str, found: Iterable[str]) -> KernelStartError:
        """``kernel=wanted`` names none of the kernelspecs ``found``."""
        names = tuple(sorted(found))
        return cls(
            f"the environment holds no kernel named {wanted!r}",
            context=f"kernels found: {', '.join(names)}",
            hint="use kernel=NAME with one of those names",
            wanted=wanted,
            found=names,
        )

    @classmethod
    def several_kernels(cls, found: Iterable[str]) -> KernelStartError:
        """No ``kernel=`` and more than one kernel beside Python's: which one is meant?"""
        names = tuple(sorted(found))
        return cls(
            f"the environment holds {len(names)} kernels and its line does not say which to run",
            context=f"kernels found: {', '.join(names)}",
            hint=f"add kernel=NAME to the #seal env line, e.g. kernel={names[0]}",
            found=names,
        )


class EnvironmentFailedError(KernelStartError):
    """An environment whose build failed earlier (``context``: the cause); not built again."""

    @classmethod
    def earlier(cls, environment: str, cause: str) -> EnvironmentFailedError:
        return cls(
            f"environment {environment!r} failed to build in an earlier cell; not built again",
            context=f"cause: {cause}",
            hint="change its `#seal env` line (a new definition is built afresh), "
            "or restart the kernel to try the same one again",
            environment=environment,
        )


class KernelDiedError(NbsealError, RuntimeError):
    """A sub-kernel exited while nbseal was waiting for it."""


class NotebookError(NbsealError, ValueError):
    """A notebook file cannot be read, executed or written.

    A file that is no notebook is built by :meth:`not_json` or
    :meth:`not_a_notebook` (which record ``path``), a damaged lock by
    :meth:`damaged_lock` and metadata of the wrong shape by
    :meth:`not_an_object` (both record ``where``).
    """

    def __init__(
        self,
        message: str,
        *,
        context: str = "",
        hint: str = "",
        path: Path | None = None,
        where: str = "",
    ) -> None:
        super().__init__(message, context=context, hint=hint)
        self.path = path
        self.where = where

    @classmethod
    def not_an_object(cls, where: str) -> NotebookError:
        """``where`` (``metadata.nbseal``, ...) holds something else than a JSON object."""
        return cls(
            f"{where} of this notebook is not an object",
            hint="remove it and run `nbseal lock NOTEBOOK`",
            where=where,
        )

    @classmethod
    def not_json(cls, path: Path) -> NotebookError:
        return cls(
            f"{path} is not a notebook: it is not valid JSON",
            hint="open it in Jupyter or restore it from version control",
            path=path,
        )

    @classmethod
    def not_a_notebook(cls, path: Path, reason: str) -> NotebookError:
        """``path`` is JSON but no notebook: ``reason`` says what nbformat or nbseal found."""
        return cls(f"{path} is not {reason}", path=path)

    @classmethod
    def damaged_lock(cls, where: str, problem: Exception) -> NotebookError:
        """The lock at ``where`` (a metadata path or a cell output) does not load."""
        return cls(
            f"the lock in {where} is damaged ({problem!r})",
            hint="run `nbseal lock NOTEBOOK` to write it again",
            where=where,
        )


class AdoptError(NbsealError, ValueError):
    """`nbseal adopt` cannot adopt ``path``: built by the constructors below."""

    def __init__(self, message: str, *, path: Path, context: str = "", hint: str = "") -> None:
        super().__init__(message, context=context, hint=hint)
        self.path = path

    @classmethod
    def not_python(cls, path: Path, language: str) -> AdoptError:
        return cls(
            f"{path} is a {language} notebook: `nbseal adopt` infers Python notebooks only",
            hint="write its first cell by hand (docs/directives/env.md), then `nbseal lock`",
            path=path,
        )

    @classmethod
    def already_adopted(cls, path: Path, cell: int) -> AdoptError:
        return cls(
            f"{path} already declares its environments (cell {cell})",
            hint="edit that cell and run `nbseal lock`, or remove it to adopt again",
            path=path,
        )

    @classmethod
    def nothing_resolves(cls, path: Path, attempts: list[tuple[str, str]]) -> AdoptError:
        """No candidate environment resolved; ``attempts`` pairs what was tried with why."""
        return cls(
            f"no environment inferred for {path} could be locked; the notebook is unchanged",
            context="\n".join(f"tried {what}: {why}" for what, why in attempts),
            hint="run `nbseal adopt --dry-run` to see the inference, then write the first "
            "cell by hand or pass --pin DATE",
            path=path,
        )


class SandboxUnavailableError(NbsealError, RuntimeError):
    """Kernels cannot be sealed here: no bubblewrap, or the kernel forbids its namespaces."""
