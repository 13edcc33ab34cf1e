"""The exceptions nbseal raises for problems a user can cause or fix.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

__all__ = [
    "BuildError",
    "DataFetchError",
    "DataHashError",
    "DataPlacementError",
    "DataSourceError",
    "DebianError",
    "DebianResolutionError",
    "DebianUnavailableError",
    "DirectiveError",
    "EnvironmentFailedError",
    "GuixError",
    "GuixResolutionError",
    "GuixUnavailableError",
    "KernelDiedError",
    "KernelStartError",
    "LockFormatError",
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


class BuildError(NbsealError, RuntimeError):
    """An environment could not be built from its lock."""


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


class SandboxUnavailableError(NbsealError, RuntimeError):
    """Kernels cannot be sealed here: no bubblewrap, or the kernel forbids its namespaces."""


class DataFetchError(NbsealError, ConnectionError):
    """Declared data could not be fetched (host, HTTP status, truncation, disk).

    The failures of a download are built by :meth:`http_status`,
    :meth:`unreachable` and :meth:`cut_short`, which record ``url`` (and
    ``status``); nothing is stored after any of them.
    """

    def __init__(
        self,
        message: str,
        *,
        context: str = "",
        hint: str = "",
        url: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, context=context, hint=hint)
        self.url = url
        self.status = status

    @classmethod
    def http_status(cls, url: str, status: int, reason: str) -> DataFetchError:
        return cls(
            f"cannot download {url}: HTTP {status} {reason}",
            hint="check the URL; a 404 often means the file moved",
            url=url,
            status=status,
        )

    @classmethod
    def unreachable(cls, url: str, reason: str) -> DataFetchError:
        """The host did not answer, or the connection failed: ``reason`` says how."""
        return cls(
            f"cannot download {url}: {reason}",
            hint="check the host is reachable and try again; nothing was stored",
            url=url,
        )

    @classmethod
    def cut_short(cls, url: str, how: str) -> DataFetchError:
        """The transfer ended early; ``how`` says how much came."""
        return cls(
            f"the download of {url} was cut short: {how}",
            hint="try again; nothing was stored",
            url=url,
        )


class DataSourceError(NbsealError, PermissionError):
    """A ``#seal data`` source the notebook has no grant for (a host file, a private address)."""


class DataHashError(NbsealError, ValueError):
    """Fetched bytes do not have the declared SHA-256; nothing was stored."""

    def __init__(self, *, url: str, expected: str, actual: str, withheld: bool = False) -> None:
        shown = "(withheld: the source is a local file or a private host)" if withheld else actual
        super().__init__(
            f"the data from {url} does not have the declared hash",
            context=f"expected sha256:{expected}\nactual   sha256:{shown}",
            hint="if the source changed on purpose, update the hash in the `#seal data` line "
            "(`nbseal data add` computes it); otherwise the download was altered",
        )
        self.url = url
        self.expected = expected
        self.actual = actual


class DataPlacementError(NbsealError, OSError):
    """A data name cannot be placed: the working directory holds a link or file on its way."""

    def __init__(self, name: str, component: str, workdir: object) -> None:
        super().__init__(
            f"cannot place the data {name!r}: {component!r} in the working directory is "
            "a symbolic link or a file, and nbseal follows no links there",
            context=f"working directory: {workdir}",
            hint=f"remove {component!r} from the working directory (a cell made it), "
            "or name the data differently",
        )
        self.name = name
        self.component = component


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
