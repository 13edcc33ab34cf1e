"""The base of nbseal's errors, and those of uv, builds and the store.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal.

An error's constructors pass the facts (its typed fields) to a
:class:`Wording`, a module's table of what each error says, through
:meth:`NbsealError.saying`; no sentence is written at a raise site.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "BuildError",
    "DirectiveError",
    "NbsealError",
    "ResolutionError",
    "StoreError",
    "UvError",
    "Wording",
    "bad_data_name",
    "internal_error",
    "no_notebook_found",
    "not_a_number",
]

_E = TypeVar("_E", bound="NbsealError")


class _Listing(string.Formatter):
    """``str.format``, but a tuple field is listed, joined by its format spec: ``{found:, }``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, tuple):
            return format_spec.join(str(item) for item in value)
        return format(value, format_spec)


_LISTING = _Listing()


@dataclass(frozen=True)
class Wording:
    """What an error says: its message, context and hint as ``str.format`` templates.

    A tuple field is listed, joined by its format spec: ``{packages:, }``.
    """

    message: str
    context: str = ""
    hint: str = ""

    def fill(self, fields: Mapping[str, object]) -> tuple[str, str, str]:
        """The message, context and hint, filled in from ``fields``."""
        return (
            _LISTING.vformat(self.message, (), fields),
            _LISTING.vformat(self.context, (), fields),
            _LISTING.vformat(self.hint, (), fields),
        )


class NbsealError(Exception):
    """Base of every error nbseal reports to a user."""

    def __init__(self, message: str, *, context: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        self.hint = hint

    @classmethod
    def saying(cls: type[_E], wording: Wording, /, **fields: object) -> _E:
        """An error of this class worded by ``wording`` filled in from ``fields``.

        Each field is kept as the attribute of the same name. A subclass's own
        ``__init__`` (if any) is not run: the wording and the fields are all.
        """
        error = cls.__new__(cls)
        message, context, hint = wording.fill(fields)
        NbsealError.__init__(error, message, context=context, hint=hint)
        return error.keeping(fields)

    def keeping(self: _E, fields: Mapping[str, object]) -> _E:
        """This error, with each of ``fields`` kept as the attribute of the same name."""
        for name, value in fields.items():
            setattr(self, name, value)
        return self

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


_INTERNAL = Wording(
    "internal error in nbseal: {problem!r}",
    hint="please report it; NBSEAL_TRACEBACK=1 in the kernel's environment shows where it happened",
)
_NO_NOTEBOOK_FOUND = Wording("no notebook found", hint="name .ipynb files or folders holding some")
_BAD_DATA_NAME = Wording(
    "cannot use {name!r} as the data's name",
    hint="pass --name NAME (no spaces, not absolute, '..' only at its start)",
)
_NOT_A_NUMBER = Wording(
    "{variable}={value!r} is not a number of {unit}",
    hint="set {variable} to a number >= 0, or unset it for the default ({default:g})",
)


def internal_error(problem: Exception) -> NbsealError:
    """What a cell shows for a ``problem`` nbseal did not foresee (a bug)."""
    return NbsealError.saying(_INTERNAL, problem=problem)


def no_notebook_found() -> NbsealError:
    """The paths named on the command line hold no ``.ipynb`` file."""
    return NbsealError.saying(_NO_NOTEBOOK_FOUND)


def bad_data_name(name: str) -> NbsealError:
    """``name`` cannot name a data file in a notebook's working directory."""
    return NbsealError.saying(_BAD_DATA_NAME, name=name)


def not_a_number(variable: str, value: str, *, unit: str, default: float) -> NbsealError:
    """The environment ``variable`` is ``value``, not a number of ``unit`` >= 0."""
    return NbsealError.saying(
        _NOT_A_NUMBER, variable=variable, value=value, unit=unit, default=default
    )


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


_U = TypeVar("_U", bound="UvError")
_UV_DOES_NOT_RUN = Wording("uv does not run", hint="reinstall nbseal")
_VENV_FAILED = Wording(
    "uv could not create a virtual environment with {python}",
    hint="check that this Python interpreter exists and runs",
)
_SYNC_FAILED = Wording(
    "uv could not install the environment from its lock",
    hint="if a hash mismatch is reported, the lock or the download was altered;"
    " re-lock the notebook with `nbseal lock`",
)
_UNRESOLVABLE = Wording(
    "uv could not resolve the environment",
    hint="check the package names and versions, or pick another pin date",
)
_INDEX_UNREADABLE = Wording(
    "the package index did not answer at {url}",
    hint="check the network and UV_DEFAULT_INDEX/UV_INDEX_URL, then run the cell again",
)
_INTERPRETER_DOES_NOT_RUN = Wording("the interpreter {python} does not run")


class UvError(NbsealError, RuntimeError):
    """uv failed; ``stderr`` holds what it said, ``cause`` its root cause (after the message)."""

    def __init__(self, message: str, *, stderr: str, hint: str = "", cause: str = "") -> None:
        shown = f"{message}: {cause.splitlines()[0]}" if cause else message
        super().__init__(shown, context=stderr.strip(), hint=hint)
        self.stderr = stderr
        self.cause = cause

    @classmethod
    def said(cls: type[_U], wording: Wording, stderr: str, cause: str = "", **fields: object) -> _U:
        """``wording`` (its context unused: uv's ``stderr`` is the context) from ``fields``."""
        message, _, hint = wording.fill(fields)
        return cls(message, stderr=stderr, hint=hint, cause=cause).keeping(fields)

    @classmethod
    def does_not_run(cls, stderr: str) -> UvError:
        return cls.said(_UV_DOES_NOT_RUN, stderr)

    @classmethod
    def venv_failed(cls, python: str, stderr: str, cause: str) -> UvError:
        """``uv venv --python python`` failed."""
        return cls.said(_VENV_FAILED, stderr, cause, python=python)

    @classmethod
    def sync_failed(cls, stderr: str, cause: str) -> UvError:
        """``uv pip sync`` of a lock failed."""
        return cls.said(_SYNC_FAILED, stderr, cause)


class ResolutionError(UvError):
    """The resolver could not satisfy an environment's requirements."""

    @classmethod
    def unresolvable(cls, stderr: str, cause: str) -> ResolutionError:
        return cls.said(_UNRESOLVABLE, stderr, cause)

    @classmethod
    def index_unreadable(cls, url: str, reason: str) -> ResolutionError:
        return cls.said(_INDEX_UNREADABLE, reason, url=url)

    @classmethod
    def interpreter_does_not_run(cls, python: str, stderr: str) -> ResolutionError:
        return cls.said(_INTERPRETER_DOES_NOT_RUN, stderr, python=python)


_PYTHON_MISSING = Wording(
    "the environment needs Python {wanted}; nbseal builds with Python {here} and uv finds no other",
    context="{why}",
    hint="install it (`uv python install {wanted}`, pyenv or your system's package) "
    "and point NBSEAL_PYTHON at it, or re-lock for Python {series} with `nbseal lock`",
)
_PYTHON_DOES_NOT_RUN = Wording(
    "the interpreter {python} does not run",
    context="{output}",
    hint="point NBSEAL_PYTHON at an existing Python, or install it",
)
_KERNELSPEC_NOT_INSTALLED = Wording(
    "the kernelspec of {package} could not be installed",
    context="{output}",
    hint="pin another version of the kernel package",
)
_STORE_ENTRY_FAILED = Wording(
    "building environment {key} failed: {reason}",
    hint="check free disk space and permissions of the store",
)


class BuildError(NbsealError, RuntimeError):
    """An environment could not be built from its lock."""

    @classmethod
    def python_missing(cls, wanted: str, here: str, why: str) -> BuildError:
        """No interpreter of ``wanted`` (3.11, or 3.11.7) here, and uv could not get one."""
        series = ".".join(here.split(".")[:2])
        return cls.saying(_PYTHON_MISSING, wanted=wanted, here=here, why=why, series=series)

    @classmethod
    def python_does_not_run(cls, python: str, output: str) -> BuildError:
        return cls.saying(_PYTHON_DOES_NOT_RUN, python=python, output=output)

    @classmethod
    def kernelspec_not_installed(cls, package: str, output: str) -> BuildError:
        """Installing the kernelspec of the kernel package ``package`` failed with ``output``."""
        return cls.saying(_KERNELSPEC_NOT_INSTALLED, package=package, output=output)

    @classmethod
    def store_entry_failed(cls, key: str, reason: str) -> BuildError:
        """Building the store's entry ``key`` failed (``reason``: the error's text)."""
        return cls.saying(_STORE_ENTRY_FAILED, key=key, reason=reason)


_STORE_UNWRITABLE = Wording(
    "cannot create the {what} at {root}: {reason}",
    hint="set NBSEAL_CACHE_DIR to a writable directory",
)


class StoreError(NbsealError, OSError):
    """The content-addressed store is unusable (permissions, disk, corruption)."""

    @classmethod
    def cannot_create(cls, what: str, root: object, reason: str) -> StoreError:
        """The ``what`` ("environment store", "data store") at ``root`` cannot be made."""
        return cls.saying(_STORE_UNWRITABLE, what=what, root=root, reason=reason)
