"""Errors of the backends beyond PyPI (Debian, Guix) and of their locks."""

from __future__ import annotations

from typing import Literal

from nbseal.errors.base import BuildError, NbsealError

__all__ = [
    "DebianError",
    "DebianResolutionError",
    "DebianUnavailableError",
    "GuixError",
    "GuixResolutionError",
    "GuixUnavailableError",
    "LockFormatError",
]


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
        if problem == "version":
            super().__init__(
                f"this {backend} lock has format {found!r}; this nbseal reads format {expected}",
                hint="re-lock the environment with `nbseal lock`",
            )
        elif problem == "invalid":
            super().__init__(f"the {backend} lock is not valid TOML", context=detail)
        else:
            super().__init__(f"the {backend} lock misses a field", context=detail)
        self.backend = backend
        self.problem = problem
        self.detail = detail
        self.found = found
        self.expected = expected


class DebianError(BuildError):
    """The Debian backend failed: the mirror, mmdebstrap, the root file system or a .deb."""


class DebianUnavailableError(DebianError):
    """mmdebstrap is missing or cannot run here; says why and what to do.

    A program a build needs that is not installed is built by
    :meth:`missing_tool`, which records ``tool``.
    """

    def __init__(
        self, message: str, *, context: str = "", hint: str = "", tool: str | None = None
    ) -> None:
        super().__init__(message, context=context, hint=hint)
        self.tool = tool

    @classmethod
    def missing_tool(
        cls, tool: str, *, hint: str, user: str | None = None, why: str = ""
    ) -> DebianUnavailableError:
        """``tool`` is not installed (``user``: the regular user it is needed for)."""
        who = f" as {user}" if user else ""
        return cls(
            f"cannot build Debian environments{who}: {tool} is not installed",
            context=why,
            hint=hint,
            tool=tool,
        )


class _Unresolved(NbsealError):
    """A backend's resolver said no: ``output`` is what it said (the context),
    ``requirement`` the requirement at fault, when one is."""

    def __init__(
        self, message: str, *, output: str = "", hint: str = "", requirement: str = ""
    ) -> None:
        super().__init__(message, context=output.strip(), hint=hint)
        self.output = output
        self.requirement = requirement


class DebianResolutionError(_Unresolved, DebianError):
    """apt cannot satisfy a Debian environment's requirements, or they are not Debian's.

    ``output`` is what apt (through mmdebstrap) said.
    """

    @classmethod
    def foreign(cls, requirement: str) -> DebianResolutionError:
        """``requirement`` has no ``deb:`` prefix."""
        return cls(
            f"{requirement!r} is not a Debian package requirement",
            hint="a Debian environment takes only deb:NAME (or deb:NAME=VERSION); "
            "Python packages go into an environment of their own",
            requirement=requirement,
        )

    @classmethod
    def bad_name(cls, requirement: str) -> DebianResolutionError:
        """``deb:NAME`` whose name (or version) Debian policy does not allow."""
        return cls(
            f"{requirement!r} is not a Debian package name",
            hint="use deb:NAME with a name as `apt-cache search` shows it, e.g. deb:r-base-core",
            requirement=requirement,
        )

    @classmethod
    def unknown_package(
        cls, package: str, *, suite: str, output: str, mirror_variable: str
    ) -> DebianResolutionError:
        """apt found no package ``package`` in ``suite``."""
        return cls(
            f"Debian {suite} has no package {package!r}",
            output=output,
            hint="check the name with `apt-cache search NAME`, or set "
            f"{mirror_variable} to a mirror that has it",
            requirement=package,
        )


class GuixError(BuildError):
    """The Guix backend failed: guix itself, its daemon, or the profile it built."""


_GUIX_INSTALL_HINT = (
    "install Guix (https://guix.gnu.org/manual/en/html_node/Installation.html) and run the "
    "cell again, or declare the environment with `#seal env NAME <- ...` from PyPI packages "
    "(e.g. `#seal env py <- numpy`) or Debian packages (`deb:NAME`) instead"
)


class GuixUnavailableError(GuixError):
    """A ``;;guix`` environment needs the ``guix`` command, and this machine has none.

    ``needed_by`` (the context) says what needed it: the ``;;guix`` lines of
    the environment, or the lock being built.
    """

    def __init__(self, needed_by: str = "") -> None:
        super().__init__(
            "guix is not installed on this machine", context=needed_by, hint=_GUIX_INSTALL_HINT
        )
        self.needed_by = needed_by


class GuixResolutionError(_Unresolved, GuixError):
    """Guix cannot satisfy a ``;;guix`` environment's packages, or they are not Guix's.

    ``output`` is what guix said (the command and its stderr).
    """

    @classmethod
    def foreign(cls, requirement: str) -> GuixResolutionError:
        """``requirement`` has no ``guix:`` prefix."""
        return cls(
            f"{requirement!r} is not a Guix package",
            hint="a Guix environment takes only Guix packages; others go into "
            "an environment of their own",
            requirement=requirement,
        )

    @classmethod
    def unknown_package(cls, spec: str, *, output: str) -> GuixResolutionError:
        """``guix show`` printed no package matching ``spec``."""
        return cls(
            f"Guix has no package {spec!r}",
            output=output,
            hint="check the name with `guix search`, or pin another Guix commit",
            requirement=spec,
        )
