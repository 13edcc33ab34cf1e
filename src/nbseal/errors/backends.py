"""Errors of the Guix backend, of backends' locks, and of their resolvers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeVar

from nbseal.errors.base import BuildError, NbsealError, Wording

__all__ = [
    "GUIX_KERNEL_HINT",
    "GuixError",
    "GuixResolutionError",
    "GuixUnavailableError",
    "LockFormatError",
]

_LOCK_WORDINGS = {
    "version": Wording(
        "this {backend} lock has format {found!r}; this nbseal reads format {expected}",
        hint="re-lock the environment with `nbseal lock`",
    ),
    "invalid": Wording("the {backend} lock is not valid TOML", context="{detail}"),
    "incomplete": Wording("the {backend} lock misses a field", context="{detail}"),
}


class LockFormatError(BuildError):
    """A backend's own lock text (a Debian or Guix lock) cannot be read.

    ``problem`` is ``"invalid"`` (not TOML), ``"version"`` (a format this
    nbseal does not read: ``found`` and ``expected``) or ``"incomplete"``
    (a field is missing or of the wrong type); ``detail`` says more.
    """

    def __init__(
        self,
        backend: str,
        problem: Literal["invalid", "version", "incomplete"],
        *,
        detail: str = "",
        found: object = None,
        expected: int | None = None,
    ) -> None:
        fields = {"backend": backend, "detail": detail, "found": found, "expected": expected}
        message, context, hint = _LOCK_WORDINGS[problem].fill(fields)
        super().__init__(message, context=context, hint=hint)
        self.backend, self.problem, self.detail = backend, problem, detail
        self.found, self.expected = found, expected


_R = TypeVar("_R", bound="_Unresolved")


class _Unresolved(NbsealError):
    """A backend's resolver said no: ``output`` is what it said (the context),
    ``requirement`` the requirement at fault, when one is."""

    output: str = ""
    requirement: str = ""

    @classmethod
    def said(cls: type[_R], wording: Wording, /, *, output: str = "", **fields: object) -> _R:
        """``wording`` from ``fields``; the resolver's ``output`` (stripped) is the context."""
        error = cls.saying(wording, output=output, **fields)
        error.context = output.strip()
        return error


GUIX_KERNEL_HINT = (
    "add a Jupyter kernel package to the environment, as Guix-Jupyter requires too: "
    "python-ipykernel (Python) or r-irkernel (R)"
)
_BUILD_FAILED = Wording(
    "Guix could not build the environment",
    context="{output}",
    hint="the lock names the exact channels and manifest; check the Guix "
    "daemon (`guix build hello`) and the network for substitutes",
)
_NO_KERNEL = Wording(
    "the Guix environment holds no Jupyter kernel",
    context="packages: {packages: }",
    hint=GUIX_KERNEL_HINT,
)
_GUIX_MISSING = Wording(
    "guix is not installed on this machine",
    context="{needed_by}",
    hint="install Guix (https://guix.gnu.org/manual/en/html_node/Installation.html) and run "
    "the cell again, or declare the environment with `#seal env NAME <- ...` from PyPI "
    "packages (e.g. `#seal env py <- numpy`) or Debian packages (`deb:NAME`) instead",
)


class GuixError(BuildError):
    """The Guix backend failed: guix itself, its daemon, or the profile it built."""

    @classmethod
    def build_failed(cls, output: str) -> GuixError:
        """``guix`` could not build the locked environment; ``output`` is what it said."""
        return cls.saying(_BUILD_FAILED, output=output)

    @classmethod
    def no_kernel(cls, packages: Iterable[str]) -> GuixError:
        """The profile of ``packages`` holds no kernelspec."""
        return cls.saying(_NO_KERNEL, packages=tuple(packages))


class GuixUnavailableError(GuixError):
    """A ``;;guix`` environment needs the ``guix`` command, and this machine has none.

    ``needed_by`` (the context) says what needed it: the ``;;guix`` lines of
    the environment, or the lock being built.
    """

    def __init__(self, needed_by: str = "") -> None:
        message, context, hint = _GUIX_MISSING.fill({"needed_by": needed_by})
        super().__init__(message, context=context, hint=hint)
        self.needed_by = needed_by


_GUIX_FOREIGN = Wording(
    "{requirement!r} is not a Guix package",
    hint="a Guix environment takes only Guix packages; others go into an environment of their own",
)
_GUIX_UNKNOWN_PACKAGE = Wording(
    "Guix has no package {requirement!r}",
    hint="check the name with `guix search`, or pin another Guix commit",
)
_CHANNELS_UNDESCRIBED = Wording(
    "guix could not describe its channels",
    hint="pin a Guix commit with `;;guix pin COMMIT` (a Guix installed without "
    "`guix pull` cannot describe itself)",
)
_CHANNELS_UNDESCRIBED_AT = Wording(
    "guix could not describe its channels at commit {commit}",
    hint="check the commit in `;;guix pin`",
)
_GUIX_UNRESOLVABLE = Wording(
    "Guix could not resolve {packages: }",
    hint="check the package names with `guix search`, or pin another commit",
)


class GuixResolutionError(_Unresolved, GuixError):
    """Guix cannot satisfy a ``;;guix`` environment's packages, or they are not Guix's.

    ``output`` is what guix said (the command and its stderr).
    """

    @classmethod
    def foreign(cls, requirement: str) -> GuixResolutionError:
        """``requirement`` has no ``guix:`` prefix."""
        return cls.said(_GUIX_FOREIGN, requirement=requirement)

    @classmethod
    def unknown_package(cls, spec: str, *, output: str) -> GuixResolutionError:
        """``guix show`` printed no package matching ``spec``."""
        return cls.said(_GUIX_UNKNOWN_PACKAGE, output=output, requirement=spec)

    @classmethod
    def channels_undescribed(cls, commit: str | None, output: str) -> GuixResolutionError:
        """``guix describe`` (at ``commit``, when the environment pins one) failed."""
        wording = _CHANNELS_UNDESCRIBED_AT if commit else _CHANNELS_UNDESCRIBED
        return cls.said(wording, output=output, commit=commit)

    @classmethod
    def unresolvable(cls, packages: Iterable[str], output: str) -> GuixResolutionError:
        return cls.said(_GUIX_UNRESOLVABLE, output=output, packages=tuple(packages))
