"""Fetch declared data into a file, hashing as the bytes arrive (one pass, flat memory).

Sources: ``http://`` and ``https://`` (httpx, streamed), ``file://`` and plain
local paths (copied, never bound live), and ``doi:DOI/FILE`` (resolved with
pooch's repository support for Zenodo, figshare and Dataverse, then
downloaded here). Every failure is a :class:`DataFetchError` naming the
source and what to do; the caller owns the destination file and removes it.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from nbseal.errors import DataFetchError
from nbseal.progress import Progress

__all__ = ["CHUNK", "fetch_to", "resolve_doi"]

CHUNK = 1 << 20
_REPORT_EVERY = 0.25  # seconds between progress updates


class _Meter:
    """Turns byte counts into throttled progress steps: bytes, total, rate."""

    def __init__(self, progress: Progress, total: int | None) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= _REPORT_EVERY:
            self._last = now
            fraction = min(self.done / self.total, 1.0) if self.total else None
            self.progress.step(self.text(), fraction)

    def text(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        of = f" of {_mb(self.total)}" if self.total else ""
        return f"{_mb(self.done)}{of} at {_mb(rate)}/s"


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB"


def _disk_error(exc: OSError, dest: Path) -> DataFetchError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return DataFetchError(
            f"no space left to store the data ({exc.strerror})",
            context=f"writing {dest.parent}",
            hint="free disk space, or point NBSEAL_CACHE_DIR at a larger disk",
        )
    return DataFetchError(f"cannot write the data: {exc}", context=str(dest))


async def fetch_to(url: str, dest: Path, progress: Progress) -> tuple[str, int]:
    """Write the bytes of ``url`` to ``dest``; return their SHA-256 (hex) and size."""
    if url.startswith("doi:"):
        url = await asyncio.to_thread(resolve_doi, url)
    scheme = urlparse(url).scheme
    try:
        if scheme in ("http", "https"):
            return await _download(url, dest, progress)
        if scheme == "file":
            return await _copy(Path(unquote(urlparse(url).path)), dest, progress)
        if scheme == "" or len(scheme) == 1:  # a path (or a Windows drive letter)
            return await _copy(Path(url).expanduser(), dest, progress)
    except OSError as exc:
        if isinstance(exc, DataFetchError):
            raise
        raise _disk_error(exc, dest) from exc
    raise DataFetchError(
        f"cannot fetch {url!r}: the scheme {scheme!r} is not supported",
        hint="use https://, http://, file://, a local path or doi:DOI/FILE",
    )


async def _download(url: str, dest: Path, progress: Progress) -> tuple[str, int]:
    digest = hashlib.sha256()
    # identity: hash the bytes as served, as curl stores them.
    headers = {"Accept-Encoding": "identity", "User-Agent": "nbseal"}
    timeout = httpx.Timeout(30.0, read=60.0)
    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, timeout=timeout, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise DataFetchError(
                    f"cannot download {url}: HTTP {response.status_code} {response.reason_phrase}",
                    hint="check the URL; a 404 often means the file moved",
                )
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            meter = _Meter(progress, total)
            with open(dest, "wb") as out:
                async for chunk in response.aiter_raw(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    meter.add(len(chunk))
            if total is not None and meter.done != total:
                raise DataFetchError(
                    f"the download of {url} was cut short: {meter.done} of {total} bytes",
                    hint="try again; nothing was stored",
                )
    except httpx.HTTPError as exc:
        raise DataFetchError(
            f"cannot download {url}: {exc or type(exc).__name__}",
            hint="check the host is reachable and try again; nothing was stored",
        ) from exc
    progress.step(meter.text())
    return digest.hexdigest(), meter.done


async def _copy(source: Path, dest: Path, progress: Progress) -> tuple[str, int]:
    if not source.is_file():
        raise DataFetchError(
            f"no file at {source}",
            hint="give an existing file (absolute, or relative to the notebook) or a URL",
        )
    digest = hashlib.sha256()
    meter = _Meter(progress, source.stat().st_size)
    with open(source, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            meter.add(len(chunk))
            await asyncio.sleep(0)  # let the kernel answer while a big file copies
    progress.step(meter.text())
    return digest.hexdigest(), meter.done


def resolve_doi(url: str) -> str:
    """``doi:10.5281/zenodo.123/file.csv`` -> the file's download URL (network)."""
    from pooch.downloaders import doi_to_repository  # type: ignore[import-untyped]

    doi_path = url.removeprefix("doi:")
    doi, _, file_name = doi_path.rpartition("/")
    if not doi or not file_name:
        raise DataFetchError(
            f"{url!r} does not name a file in a DOI record",
            hint="write doi:DOI/FILENAME, e.g. doi:10.5281/zenodo.3939050/tiny-data.txt",
        )
    try:
        repository = doi_to_repository(doi)
        resolved = repository.download_url(file_name)
    except Exception as exc:
        raise DataFetchError(
            f"cannot resolve {url}: {exc}",
            hint="check the DOI and the file name; Zenodo, figshare and Dataverse are supported",
        ) from exc
    return str(resolved)
