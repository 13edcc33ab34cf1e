"""A wheel's metadata is read from the index once, then from the cache (issue 16).

`nbseal adopt` reads the core metadata of every release it considers. Old
wheels have no PEP 658 copy on the index, so each is read out of the wheel
with HTTP range requests. Against a real index on 127.0.0.1 (a PEP 691 page,
a wheel served with ranges), this checks that the metadata comes out of the
wheel, that a second index object (a second `nbseal adopt`) reads it from
the cache without asking the server, and that nothing is cached for a wheel
without a SHA-256 or when nothing could be read.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.version import Version

from nbseal.backends.pypi_index import ProjectIndex, target_for

METADATA = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: six>=1.5\n\n"


def _wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("demo/__init__.py", "# " + "padding " * 4000)
        archive.writestr("demo-1.0.dist-info/METADATA", METADATA)
        archive.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    return buffer.getvalue()


@dataclass
class Index:
    url: str
    wheel: bytes
    files: list[dict[str, object]]
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def index() -> Iterator[Index]:
    wheel = _wheel()
    state = Index("", wheel, [])

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            state.requests.append(f"HEAD {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", str(len(state.wheel)))
            self.end_headers()

        def do_GET(self) -> None:
            state.requests.append(f"GET {self.path}")
            if self.path == "/simple/demo/":
                body = json.dumps({"meta": {"api-version": "1.1"}, "files": state.files}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            elif self.path.startswith("/files/"):
                first, last = self.headers["Range"].removeprefix("bytes=").split("-")
                body = state.wheel[int(first) : int(last) + 1]
                self.send_response(206)
            else:
                self.send_error(404)
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _file(index: Index, name: str, sha256: str | None) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": name,
        "url": f"{index.url}/files/{name}",
        "upload-time": "2018-01-01T00:00:00Z",
        "hashes": {} if sha256 is None else {"sha256": sha256},
    }
    return entry


def _requires(index: Index, cache: Path) -> list[str]:
    projects = ProjectIndex(index.url + "/simple", metadata_cache=cache)
    found = projects.requirements("demo", Version("1.0"), target_for(sys.executable))
    return [str(requirement) for requirement in found]


def test_metadata_is_read_from_the_wheel_once_then_from_the_cache(
    index: Index, tmp_path: Path
) -> None:
    sha256 = hashlib.sha256(index.wheel).hexdigest()
    index.files.append(_file(index, "demo-1.0-py3-none-any.whl", sha256.upper()))
    assert _requires(index, tmp_path) == ["six>=1.5"]
    ranged = [r for r in index.requests if r.startswith(("HEAD /files/", "GET /files/"))]
    assert ranged, index.requests  # read out of the wheel, by ranges
    assert (tmp_path / sha256[:2] / sha256).read_text() == METADATA

    index.requests.clear()
    assert _requires(index, tmp_path) == ["six>=1.5"]
    assert index.requests == ["GET /simple/demo/"], "the wheel is not asked for again"


def test_nothing_is_cached_without_a_sha256_or_without_metadata(
    index: Index, tmp_path: Path
) -> None:
    index.files.append(_file(index, "demo-1.0-py3-none-any.whl", None))
    assert _requires(index, tmp_path) == ["six>=1.5"]
    assert not tmp_path.exists() or not any(tmp_path.rglob("*"))
    index.requests.clear()
    assert _requires(index, tmp_path) == ["six>=1.5"]
    assert any(r.startswith("GET /files/") for r in index.requests), "read again: not cached"

    # A file that is no zip gives no metadata: "" is never cached.
    index.files[:] = [_file(index, "demo-1.0-py3-none-any.whl", "ab" * 32)]
    index.wheel = b"no zip file, whatever its name says" * 100
    broken = tmp_path / "broken"
    assert _requires(index, broken) == []
    assert not broken.exists() or not any(broken.rglob("*"))


def test_a_hash_that_is_not_sha256_hex_names_no_cache_file(index: Index, tmp_path: Path) -> None:
    # A hostile index must not choose where the cache writes: the hash names the file.
    cache = tmp_path / "a" / "cache"
    escape = tmp_path / "escaped"  # cache / ".." / "../escaped", were the hash taken as given
    index.files.append(_file(index, "demo-1.0-py3-none-any.whl", "../escaped"))
    assert _requires(index, cache) == ["six>=1.5"]
    assert not escape.exists()
    assert not cache.exists() or not any(cache.rglob("*"))
    assert any(r.startswith("GET /files/") for r in index.requests), "read, not cached"
