"""A real HTTP server on 127.0.0.1 for data tests, with ways to misbehave.

Paths:
    /f/NAME           the bytes registered under NAME
    /cut/NAME         announces the full length, sends half, closes
    /slow/NAME        sends 64 KiB every 0.1 s
    /big/SIZE         SIZE bytes of a fixed pattern, streamed (see big_sha256)
    anything else     404
Every request is counted per path, so tests can prove "one download".
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_PATTERN = bytes(range(256)) * 4096  # 1 MiB


def big_chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        chunk = _PATTERN[: min(len(_PATTERN), size - sent)]
        sent += len(chunk)
        yield chunk


def big_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in big_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class DataServer:
    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, content: bytes) -> str:
        self.files[name] = content
        return f"{self.url}f/{name}"


@contextmanager
def serve() -> Iterator[DataServer]:
    state = DataServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with state.lock:
                state.hits[self.path] += 1
            kind, _, name = self.path.strip("/").partition("/")
            if kind == "big":
                size = int(name)
                self._head(size)
                for chunk in big_chunks(size):
                    self.wfile.write(chunk)
                return
            content = state.files.get(name)
            if content is None or kind not in ("f", "cut", "slow"):
                self.send_error(404, "no such file")
                return
            self._head(len(content))
            if kind == "f":
                self.wfile.write(content)
            elif kind == "cut":
                self.wfile.write(content[: len(content) // 2])
                self.wfile.flush()
                self.close_connection = True
            else:
                try:
                    for start in range(0, len(content), 65536):
                        self.wfile.write(content[start : start + 65536])
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a killed run)

        def _head(self, length: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
