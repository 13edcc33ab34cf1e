"""Where the host may read or request data on a notebook's behalf.

``#seal data`` makes the *host* fetch a source, outside the sandbox. Left
unchecked, a notebook without network could use that to probe what its
kernels may not reach: hash a host file (``#seal data h <- /root/secret``),
or request a loopback or link-local URL (a cloud metadata service) and read
the response's hash back from the error. So the host reads a local path only
inside the notebook's folder or a folder the notebook shares (``#seal share``),
and connects to a loopback, link-local, private or otherwise non-public
address only when the notebook says ``#seal allow network``, or when the
machine's owner trusts that host (``$NBSEAL_DATA_TRUSTED_HOSTS``, e.g. an
institute's mirror on a private network). The address checked is the one
actually connected to, after every redirect, so DNS cannot turn it. When such
a source does not have the declared hash, the actual hash is not shown.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nbseal.errors import DataSourceError

__all__ = ["TRUSTED_HOSTS_ENV_VAR", "UNRESTRICTED", "SourcePolicy", "is_public_address"]

TRUSTED_HOSTS_ENV_VAR = "NBSEAL_DATA_TRUSTED_HOSTS"


def _trusted_hosts() -> frozenset[str]:
    value = os.environ.get(TRUSTED_HOSTS_ENV_VAR, "")
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def is_public_address(address: str) -> bool:
    """Whether ``address`` (IPv4 or IPv6 text) is a global unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class SourcePolicy:
    """What ``#seal data`` may make the host read (``local_roots``) or connect to."""

    # Folders whose files may be read; None: any file (the user's own command).
    local_roots: tuple[Path, ...] | None = ()
    private_network: bool = False
    trusted_hosts: frozenset[str] = field(default_factory=_trusted_hosts)

    @classmethod
    def for_notebook(
        cls, notebook_dir: Path, shares: Iterable[Path], *, network: bool
    ) -> SourcePolicy:
        roots = (notebook_dir.resolve(), *(Path(p).resolve() for p in shares))
        return cls(local_roots=roots, private_network=network)

    def check_path(self, path: Path) -> Path:
        """The resolved ``path``; raises unless it lies in an allowed folder."""
        resolved = path.expanduser().resolve()
        if self.local_roots is None:
            return resolved
        if any(resolved == root or root in resolved.parents for root in self.local_roots):
            return resolved
        raise DataSourceError.outside_folder(path, resolved)

    def check_peer(self, host: str, address: str) -> None:
        """Raise unless the host may have connected to ``address`` for ``host``."""
        if self.local_roots is None or self.private_network or is_public_address(address):
            return
        if host.lower() in self.trusted_hosts or address in self.trusted_hosts:
            return
        raise DataSourceError.private_host(host, address, variable=TRUSTED_HOSTS_ENV_VAR)

    def withholds_hash(self, url: str) -> bool:
        """Whether a hash mismatch must not show the actual hash of ``url``'s bytes."""
        if self.local_roots is None:
            return False
        return "://" not in url or url.startswith("file:") or self._names_private_host(url)

    def _names_private_host(self, url: str) -> bool:
        from urllib.parse import urlsplit

        host = (urlsplit(url).hostname or "").lower()
        if host in self.trusted_hosts:
            return False  # the machine's owner vouches for it
        return not _resolves_public(host)


def _resolves_public(host: str) -> bool:
    import socket

    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(is_public_address(str(info[4][0])) for info in infos)


UNRESTRICTED = SourcePolicy(local_roots=None, private_network=True, trusted_hosts=frozenset())
