"""The exceptions nbseal raises for problems a user can cause or fix.

Every error carries three parts, in the manner of pip's diagnostic errors:
what went wrong (``message``), where (``context``), and what to do (``hint``).
Classes also inherit the matching built-in, as nbclient's do, so callers may
catch ``ValueError`` or ``TimeoutError`` without knowing nbseal.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "DataFetchError",
    "DataHashError",
    "DataPlacementError",
    "DataSourceError",
    "DirectiveError",
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
    """uv failed; ``stderr`` holds what it said."""

    def __init__(self, message: str, *, stderr: str, hint: str = "") -> None:
        super().__init__(message, context=stderr.strip(), hint=hint)
        self.stderr = stderr


class ResolutionError(UvError):
    """The resolver could not satisfy an environment's requirements."""


class BuildError(NbsealError, RuntimeError):
    """An environment could not be built from its lock."""


class StoreError(NbsealError, OSError):
    """The content-addressed store is unusable (permissions, disk, corruption)."""


class KernelStartError(NbsealError, RuntimeError):
    """A sub-kernel did not start or did not answer."""


class KernelDiedError(NbsealError, RuntimeError):
    """A sub-kernel exited while nbseal was waiting for it."""


class NotebookError(NbsealError, ValueError):
    """A notebook file cannot be read, executed or written."""


class SandboxUnavailableError(NbsealError, RuntimeError):
    """Kernels cannot be sealed here: no bubblewrap, or the kernel forbids its namespaces."""


class DataFetchError(NbsealError, ConnectionError):
    """Declared data could not be fetched (host, HTTP status, truncation, disk)."""


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


class GuixUnavailableError(BuildError):
    """A ``;;guix`` environment needs the ``guix`` command, and this machine has none."""


__all__ += ["GuixUnavailableError"]
