"""Fixtures for kernels in real bubblewrap sandboxes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.seccomp import PROFILE, SeccompProfile
from tests.sandbox.helpers import LoopThread, SealedKernel

# Values a careless launcher would hand to the kernel.
FAKE_SECRETS = {
    "GITHUB_TOKEN": "ghp_nbsealTestTokenThatMustNotLeak0000",
    "AWS_SECRET_ACCESS_KEY": "nbseal/test/secret/that/must/not/leak",
}

# Python probes used by the tests, defined once in each kernel.
PROBES = """
import errno as _errno, os as _os
def _outcome(action):
    try:
        action()
    except OSError as exc:
        return f"{type(exc).__name__} {_errno.errorcode.get(exc.errno, exc.errno)}"
    return "ok"
def _read(path):
    return _outcome(lambda: open(path, "rb").read())
def _write(path, text="x"):
    def go():
        with open(path, "w") as handle:
            handle.write(text)
    return _outcome(go)
"""


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def runtime_dir() -> Iterator[Path]:
    # Short, like the proxy's: ipc socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="nbseal-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def start_sealed(
    loop_thread: LoopThread, runtime_dir: Path, default_env: Path
) -> Iterator[Callable[..., SealedKernel]]:
    """Start sealed kernels of the default environment; stop them afterwards."""
    started: list[SealedKernel] = []

    def start(policy: SandboxPolicy, seccomp: SeccompProfile = PROFILE) -> SealedKernel:
        kernel = SealedKernel(loop_thread, default_env, policy, runtime_dir, seccomp).start()
        started.append(kernel)
        out = kernel.execute(PROBES)
        assert out.status == "ok", (out.ename, out.evalue)
        return kernel

    yield start
    for kernel in started:
        kernel.stop()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A host folder root owns and anyone may enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="nbseal-open-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nbseal-work-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sealed(
    start_sealed: Callable[[SandboxPolicy], SealedKernel],
) -> Iterator[SealedKernel]:
    """One kernel under the default policy, launched with secrets in the environment."""
    workdir = Path(tempfile.mkdtemp(prefix="nbseal-work-"))
    saved = {name: os.environ.get(name) for name in FAKE_SECRETS}
    os.environ.update(FAKE_SECRETS)
    try:
        kernel = start_sealed(SandboxPolicy(workdir=workdir))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield kernel
    shutil.rmtree(workdir, ignore_errors=True)


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def host_server() -> Iterator[str]:
    """A real HTTP server on the host's 127.0.0.1; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    with contextlib.suppress(OSError):
        server.server_close()
