"""Errors of notebook files: reading, exporting, comparing and adopting them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from nbseal.errors.base import NbsealError, Wording

__all__ = ["AdoptError", "NotebookError"]

_RELOCK = "run `nbseal lock NOTEBOOK` to write it again"
_NOT_AN_OBJECT = Wording(
    "{where} of this notebook is not an object", hint="remove it and run `nbseal lock NOTEBOOK`"
)
_NOT_JSON = Wording(
    "{path} is not a notebook: it is not valid JSON",
    hint="open it in Jupyter or restore it from version control",
)
_NOT_A_NOTEBOOK = Wording("{path} is not {reason}")
_DAMAGED_LOCK = Wording("the lock in {where} is damaged ({problem!r})", hint=_RELOCK)
_MISSING = Wording("no notebook at {path}", hint="check the path")
_UNREADABLE = Wording("cannot read {path}: {reason}")
_LOCK_NOT_CURRENT = Wording(
    "{path} cannot be verified: its lock is missing or stale",
    context="{details}",
    hint="run `nbseal lock {path}` and commit it, or pass --relock to resolve afresh",
)
_NOTHING_TO_EXPORT = Wording(
    "{path} has no current lock to export",
    context="{details}",
    hint="run `nbseal lock {path}` first",
)
_UNKNOWN_FORMAT = Wording("cannot export to {wanted!r}", hint="use one of: {formats:, }")
_SEVERAL_ENVIRONMENTS = Wording(
    "{path} uses {count} environments; a script holds one",
    context="{names:, }",
    hint="export --to requirements or --to lock, which keep every environment",
)
_NOT_PYTHON = Wording("environment {environment!r} runs kernel {kernel}, not Python")
_SANITISER_UNREADABLE = Wording(
    "cannot read the sanitiser file {path}: {reason}",
    hint="write sections like [date]\\nregex: \\d{{4}}-\\d{{2}}-\\d{{2}}\\nreplace: DATE",
)
_SANITISER_WITHOUT_REGEX = Wording("section [{section}] of {path} has no regex: line")
_SANITISER_BAD_REGEX = Wording("section [{section}] of {path}: bad regex ({reason})")


class NotebookError(NbsealError, ValueError):
    """A notebook file cannot be read, executed or written.

    Records the ``path`` of the file at fault, or ``where`` in it (a
    metadata path, a cell output) the fault is.
    """

    path: Path | None = None
    where: str = ""

    @classmethod
    def not_an_object(cls, where: str) -> NotebookError:
        """``where`` (``metadata.nbseal``, ...) holds something else than a JSON object."""
        return cls.saying(_NOT_AN_OBJECT, where=where)

    @classmethod
    def not_json(cls, path: Path) -> NotebookError:
        return cls.saying(_NOT_JSON, path=path)

    @classmethod
    def not_a_notebook(cls, path: Path, reason: str) -> NotebookError:
        """``path`` is JSON but no notebook: ``reason`` says what nbformat or nbseal found."""
        return cls.saying(_NOT_A_NOTEBOOK, path=path, reason=reason)

    @classmethod
    def damaged_lock(cls, where: str, problem: Exception) -> NotebookError:
        """The lock at ``where`` (a metadata path or a cell output) does not load."""
        return cls.saying(_DAMAGED_LOCK, where=where, problem=problem)

    @classmethod
    def missing(cls, path: Path) -> NotebookError:
        return cls.saying(_MISSING, path=path)

    @classmethod
    def unreadable(cls, path: Path, reason: str) -> NotebookError:
        return cls.saying(_UNREADABLE, path=path, reason=reason)

    @classmethod
    def lock_not_current(cls, path: Path, details: str) -> NotebookError:
        """``verify`` without ``--relock`` of ``path``, whose lock ``details`` says is stale."""
        return cls.saying(_LOCK_NOT_CURRENT, path=path, details=details)

    @classmethod
    def nothing_to_export(cls, path: Path, details: str) -> NotebookError:
        return cls.saying(_NOTHING_TO_EXPORT, path=path, details=details)

    @classmethod
    def unknown_format(cls, wanted: str, formats: Iterable[str]) -> NotebookError:
        return cls.saying(_UNKNOWN_FORMAT, wanted=wanted, formats=tuple(formats))

    @classmethod
    def several_environments(cls, path: Path, names: Iterable[str]) -> NotebookError:
        """A script export of ``path``, which declares the environments ``names``."""
        listed = tuple(sorted(names))
        return cls.saying(_SEVERAL_ENVIRONMENTS, path=path, names=listed, count=len(listed))

    @classmethod
    def not_python(cls, environment: str, kernel: str) -> NotebookError:
        return cls.saying(_NOT_PYTHON, environment=environment, kernel=kernel)

    @classmethod
    def sanitiser_unreadable(cls, path: Path, reason: str) -> NotebookError:
        return cls.saying(_SANITISER_UNREADABLE, path=path, reason=reason)

    @classmethod
    def sanitiser_without_regex(cls, path: Path, section: str) -> NotebookError:
        return cls.saying(_SANITISER_WITHOUT_REGEX, path=path, section=section)

    @classmethod
    def sanitiser_bad_regex(cls, path: Path, section: str, reason: str) -> NotebookError:
        return cls.saying(_SANITISER_BAD_REGEX, path=path, section=section, reason=reason)


_NOT_PYTHON_NOTEBOOK = Wording(
    "{path} is a {language} notebook: `nbseal adopt` infers Python notebooks only",
    hint="write its first cell by hand (docs/directives/env.md), then `nbseal lock`",
)
_ALREADY_ADOPTED = Wording(
    "{path} already declares its environments (cell {cell})",
    hint="edit that cell and run `nbseal lock`, or remove it to adopt again",
)
_NOTHING_RESOLVES = Wording(
    "no environment inferred for {path} could be locked; the notebook is unchanged",
    context="{tried}",
    hint="run `nbseal adopt --dry-run` to see the inference, then write the first "
    "cell by hand or pass --pin DATE",
)


class AdoptError(NbsealError, ValueError):
    """`nbseal adopt` cannot adopt ``path``: built by the constructors below."""

    path: Path

    @classmethod
    def not_python(cls, path: Path, language: str) -> AdoptError:
        return cls.saying(_NOT_PYTHON_NOTEBOOK, path=path, language=language)

    @classmethod
    def already_adopted(cls, path: Path, cell: int) -> AdoptError:
        return cls.saying(_ALREADY_ADOPTED, path=path, cell=cell)

    @classmethod
    def nothing_resolves(cls, path: Path, attempts: list[tuple[str, str]]) -> AdoptError:
        """No candidate environment resolved; ``attempts`` pairs what was tried with why."""
        tried = "\n".join(f"tried {what}: {why}" for what, why in attempts)
        return cls.saying(_NOTHING_RESOLVES, path=path, attempts=attempts, tried=tried)
