"""Errors of declared data: fetching, hashing and placing it."""

from __future__ import annotations

from pathlib import Path

from nbseal.errors.base import NbsealError, Wording

__all__ = [
    "DataFetchError",
    "DataHashError",
    "DataPlacementError",
    "DataSourceError",
]

_NOTHING_STORED = "try again; nothing was stored"
_HTTP_STATUS = Wording(
    "cannot download {url}: HTTP {status} {reason}",
    hint="check the URL; a 404 often means the file moved",
)
_UNREACHABLE = Wording(
    "cannot download {url}: {reason}",
    hint="check the host is reachable and try again; nothing was stored",
)
_CUT_SHORT = Wording("the download of {url} was cut short: {how}", hint=_NOTHING_STORED)
_TOO_MANY_REDIRECTS = Wording("cannot download {url}: more than {redirects} redirects")
_INTERRUPTED = Wording("the download was interrupted; nothing was stored")
_UNSUPPORTED_SCHEME = Wording(
    "cannot fetch {url!r}: the scheme {scheme!r} is not supported",
    hint="use https://, http://, file://, a local path or doi:DOI/FILE",
)
_NO_FILE = Wording(
    "no file at {path}",
    hint="give an existing file (absolute, or relative to the notebook) or a URL",
)
_NOT_A_DOI_FILE = Wording(
    "{url!r} does not name a file in a DOI record",
    hint="write doi:DOI/FILENAME, e.g. doi:10.5281/zenodo.3939050/tiny-data.txt",
)
_DOI_UNRESOLVED = Wording(
    "cannot resolve {url}: {reason}",
    hint="check the DOI and the file name; Zenodo, figshare and Dataverse are supported",
)
_DISK_FULL = Wording(
    "no space left to store the data ({reason})",
    context="writing {folder}",
    hint="free disk space, or point NBSEAL_CACHE_DIR at a larger disk",
)
_UNWRITABLE = Wording("cannot write the data: {reason}", context="{path}")
_OUTSIDE_FOLDER = Wording(
    "the data source {path} is outside the notebook's folder",
    context="resolved: {resolved}",
    hint="put the file in the notebook's folder, or grant its folder with "
    "`#seal share FOLDER ro` (the notebook then shows the grant)",
)
_PRIVATE_HOST = Wording(
    "the data source host {host} is at {address}, a loopback, link-local or "
    "private address, which a notebook without network may not make the host request",
    hint="grant it with `#seal allow network`, or, on a machine whose owner trusts "
    "that host, set ${variable}={host}",
)


class DataFetchError(NbsealError, ConnectionError):
    """Declared data could not be fetched (host, HTTP status, truncation, disk).

    A download's failures record ``url`` (and ``status``, ``reason``), a local
    file's ``path``; nothing is stored after any of them.
    """

    url: str = ""
    status: int | None = None
    path: Path | None = None

    @classmethod
    def http_status(cls, url: str, status: int, reason: str) -> DataFetchError:
        return cls.saying(_HTTP_STATUS, url=url, status=status, reason=reason)

    @classmethod
    def unreachable(cls, url: str, reason: str) -> DataFetchError:
        """The host did not answer, or the connection failed: ``reason`` says how."""
        return cls.saying(_UNREACHABLE, url=url, reason=reason)

    @classmethod
    def cut_short(cls, url: str, how: str) -> DataFetchError:
        """The transfer ended early; ``how`` says how much came."""
        return cls.saying(_CUT_SHORT, url=url, how=how)

    @classmethod
    def too_many_redirects(cls, url: str, redirects: int) -> DataFetchError:
        return cls.saying(_TOO_MANY_REDIRECTS, url=url, redirects=redirects)

    @classmethod
    def interrupted(cls) -> DataFetchError:
        return cls.saying(_INTERRUPTED)

    @classmethod
    def unsupported_scheme(cls, url: str, scheme: str) -> DataFetchError:
        return cls.saying(_UNSUPPORTED_SCHEME, url=url, scheme=scheme)

    @classmethod
    def no_file(cls, path: Path) -> DataFetchError:
        return cls.saying(_NO_FILE, path=path)

    @classmethod
    def not_a_doi_file(cls, url: str) -> DataFetchError:
        """``url`` (``doi:...``) has no ``/FILE`` after the DOI."""
        return cls.saying(_NOT_A_DOI_FILE, url=url)

    @classmethod
    def doi_unresolved(cls, url: str, reason: str) -> DataFetchError:
        return cls.saying(_DOI_UNRESOLVED, url=url, reason=reason)

    @classmethod
    def disk_full(cls, path: Path, reason: str) -> DataFetchError:
        """Writing ``path`` ran out of space; ``reason`` is the system's word for it."""
        return cls.saying(_DISK_FULL, path=path, folder=path.parent, reason=reason)

    @classmethod
    def unwritable(cls, path: Path, reason: str) -> DataFetchError:
        return cls.saying(_UNWRITABLE, path=path, reason=reason)


class DataSourceError(NbsealError, PermissionError):
    """A ``#seal data`` source the notebook has no grant for (a host file, a private address).

    A file records ``path`` (and where it ``resolved`` to), a host ``host``
    and its ``address``.
    """

    path: Path | None = None
    host: str = ""
    address: str = ""

    @classmethod
    def outside_folder(cls, path: Path, resolved: Path) -> DataSourceError:
        return cls.saying(_OUTSIDE_FOLDER, path=path, resolved=resolved)

    @classmethod
    def private_host(cls, host: str, address: str, *, variable: str) -> DataSourceError:
        """``host`` is at a non-public ``address``; ``variable`` lists the hosts trusted."""
        return cls.saying(_PRIVATE_HOST, host=host, address=address, variable=variable)


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
