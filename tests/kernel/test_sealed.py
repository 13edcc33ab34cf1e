"""Escape attempts from a notebook cell, through the real nbseal kernel and its sandbox.

The launcher's own tests (tests/sandbox) check each mount and namespace; these
check that what a user runs in a cell, through the proxy, gets the same seal.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.helpers import BASE_PYTHON_UNDER_ROOT, execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env")

PROBE = """
import os, socket, sys, urllib.request
def probe(label, action):
    try:
        print(label, "ok", repr(action())[:60])
    except BaseException as exc:
        print(label, type(exc).__name__, getattr(exc, "errno", ""))
"""


@pytest.fixture
def canary() -> Iterator[Path]:
    """A file in the real $HOME, which no notebook may read."""
    path = Path.home() / f".nbseal-canary-{uuid.uuid4().hex}"
    path.write_text("if you can read this, the sandbox leaks")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture
def host_server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_a_cell_cannot_escape(
    canary: Path, host_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")  # the proxy inherits it
    neighbour = Path.cwd() / "pyproject.toml"
    with running_kernel() as (km, kc):
        proxy_pid = km.provisioner.process.pid
        site = execute(kc, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        purelib = site.stdout.strip()
        out = execute(
            kc,
            PROBE + f"probe('canary', lambda: open({str(canary)!r}).read())\n"
            f"probe('neighbour', lambda: open({str(neighbour)!r}).read())\n"
            "probe('root', lambda: os.listdir('/root'))\n"
            "probe('root-chmod', lambda: os.chmod('/root', 0o755))\n"
            "probe('home', lambda: os.listdir('/home'))\n"
            f"probe('http', lambda: urllib.request.urlopen({host_server!r}, timeout=3))\n"
            "probe('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
            f"probe('site', lambda: open({purelib + '/evil.py'!r}, 'w'))\n"
            "probe('env', lambda: open(sys.prefix + '/pyvenv.cfg', 'a'))\n"
            "probe('env-chmod', lambda: os.chmod(sys.prefix + '/pyvenv.cfg', 0o666))\n"
            f"probe('kill', lambda: os.kill({proxy_pid}, 0))\n"
            "probe('secret', lambda: os.environ['AWS_SECRET_ACCESS_KEY'])\n",
        )
        lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
        described = execute(kc, "#seal describe").of_type("display_data")
    assert lines["canary"].startswith("FileNotFoundError"), lines
    assert lines["neighbour"].startswith("FileNotFoundError")
    if BASE_PYTHON_UNDER_ROOT:
        assert lines["root"] == "PermissionError 13", "only traversable, to reach the base Python"
        assert lines["root-chmod"] == "OSError 30"
    else:
        assert lines["root"] == "FileNotFoundError 2", "not in the sandbox at all"
        assert lines["root-chmod"] == "FileNotFoundError 2"
    assert lines["home"] == "PermissionError 13"
    assert lines["http"].startswith("URLError")
    assert lines["dns"].startswith("gaierror")
    assert lines["site"] == "OSError 30", "EROFS: site-packages is read-only"
    assert lines["env"] in ("PermissionError 13", "OSError 30")
    assert lines["env-chmod"] == "OSError 30", "EROFS: the store entry is read-only"
    assert lines["kill"] == "ProcessLookupError 3", "host processes are invisible"
    assert lines["secret"].startswith("KeyError")
    table = described[0]["content"]["data"]["text/plain"]
    assert "sandbox sealed: no network, no host files" in table
    # The seccomp profile and the caps are named, and nothing that differs between machines.
    assert (
        "(seccomp profile nbseal-default, no capabilities; "
        "limits: 1024 processes, memory 8 GiB, tmp 2 GiB each)"
    ) in table
    assert "host uid" not in table


FORGE = """
import hashlib, hmac, json, sys, time, uuid, zmq
# The connection file is gone once the kernel started; its key is in memory.
key = get_ipython().kernel.session.key
header = json.dumps({'msg_id': 'forged-1', 'msg_type': 'execute_request', 'session': 'x',
                     'username': 'x', 'date': '2026-01-01T00:00:00Z', 'version': '5.3'}).encode()
content = json.dumps({'code': '#seal share / rw\\nprint("forged ran")', 'silent': False}).encode()
parts = [header, b'{}', b'{}', content]
signature = hmac.new(key, b''.join(parts), hashlib.sha256).hexdigest().encode()
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.connect('tcp://127.0.0.1:%d')
sock.send_multipart([b'<IDS|MSG>', signature, *parts])
time.sleep(1.0)
print('kernel key', key.decode())
"""


def test_a_kernel_with_network_cannot_speak_for_the_frontend() -> None:
    with running_kernel() as (km, kc):
        shell_port = km.get_connection_info()["shell_port"]
        forged = execute(kc, "#seal allow network\n" + FORGE % shell_port, timeout=60)
        assert forged.status == "ok", forged.reply["content"]
        kernel_key = forged.stdout.split("kernel key ")[1].strip()
        assert kernel_key.encode() != km.session.key, "a networked kernel holds its own key"
        time.sleep(1.0)
        after = execute(kc, "#seal describe")
        table = after.of_type("display_data")[0]["content"]["data"]["text/plain"]
        # The frontend's client saw nothing of the forged request.
        while kc.iopub_channel.msg_ready():
            message = kc.get_iopub_msg(timeout=1)
            assert message["parent_header"].get("msg_id") != "forged-1"
    assert "share / (rw)" not in table
    assert "sealed; exceptions: network" in table
