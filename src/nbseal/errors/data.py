"""Errors of declared data: fetching, hashing and placing it."""

from __future__ import annotations

from nbseal.errors.base import NbsealError

__all__ = [
    "DataFetchError",
    "DataHashError",
    "DataPlacementError",
    "DataSourceError",
]


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
