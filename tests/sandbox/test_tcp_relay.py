"""nbseal/sandbox/tcp_relay.py between real pyzmq sockets: ipc on one side, TCP on the other.

The relay runs as the script it is, in a process of its own; the "kernel" it
starts is a small pyzmq program that binds TCP as xeus does. No sandbox here:
the relay's job is the same on a shared loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from nbseal.sandbox.launch import relay_script
from tests.kernel.helpers import pid_alive, wait_gone

PORTS = {"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5}

# Binds TCP like xeus after an optional delay; echoes on ROUTER and REP;
# publishes on PUB, under the first frame as topic, what shell receives;
# frames ["exit", CODE] end it with that code.
PEER = textwrap.dedent(
    """
    import json, os, sys, time, zmq
    info = json.load(open(sys.argv[1]))
    here = os.path.dirname(sys.argv[1])
    open(os.path.join(here, "kernel.pid"), "w").write(str(os.getpid()))
    time.sleep(float(os.environ.get("PEER_DELAY", "0")))
    ctx = zmq.Context()
    def bind(kind, channel):
        sock = ctx.socket(kind)
        sock.bind(f"tcp://{info['ip']}:{info[channel + '_port']}")
        return sock
    shell, control, stdin = (bind(zmq.ROUTER, c) for c in ("shell", "control", "stdin"))
    iopub, hb = bind(zmq.PUB, "iopub"), bind(zmq.REP, "hb")
    poller = zmq.Poller()
    for sock in (shell, control, stdin, hb):
        poller.register(sock, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll():
            frames = sock.recv_multipart()
            if sock is hb:
                hb.send_multipart(frames)
                continue
            if frames[1:2] == [b"exit"]:
                sys.exit(int(frames[2]))
            sock.send_multipart(frames)
            iopub.send_multipart(frames[1:])
    """
)


@dataclass
class Relayed:
    process: subprocess.Popen[bytes]
    folder: Path
    context: zmq.Context[zmq.Socket[bytes]]
    info: dict[str, object]

    def socket(self, kind: int, channel: str, identity: bytes | None = None) -> zmq.Socket[bytes]:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.rcvtimeo = 10_000
        if identity is not None:
            sock.identity = identity
        sock.connect(f"ipc://{self.folder / 'k'}-{PORTS[channel]}")
        return sock

    @property
    def sockets(self) -> list[Path]:
        return sorted(self.folder.glob("k-*"))

    def kernel_pid(self) -> int:
        deadline = time.monotonic() + 10
        pid_file = self.folder / "kernel.pid"
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the kernel did not start"
            time.sleep(0.02)
        return int(pid_file.read_text())


def start_relay(
    folder: Path,
    kernel: list[str],
    *,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    ipc_file = folder / "connection.json"
    ipc_file.write_text(
        json.dumps(
            {
                "transport": "ipc",
                "ip": str(folder / "k"),
                "key": "a-key-only-these-two-share",
                "signature_scheme": "hmac-sha256",
                **{f"{c}_port": p for c, p in PORTS.items()},
            }
        )
    )
    return subprocess.Popen(
        [
            sys.executable,
            str(relay_script()),
            "--ipc-connection",
            str(ipc_file),
            "--tcp-connection",
            str(folder / "tcp.json"),
            *extra,
            "--",
            *kernel,
        ],
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def relayed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Relayed]:
    peer = tmp_path / "peer.py"
    peer.write_text(PEER)
    delay = getattr(request, "param", "0")
    process = start_relay(
        tmp_path, [sys.executable, str(peer), "{connection_file}"], env={"PEER_DELAY": delay}
    )
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield Relayed(process, tmp_path, context, {})
    finally:
        context.destroy(linger=0)
        if process.poll() is None:
            process.terminate()
            process.wait(10)


def test_the_tcp_connection_file_keeps_the_key(relayed: Relayed) -> None:
    relayed.kernel_pid()
    tcp = json.loads((relayed.folder / "tcp.json").read_text())
    ipc = json.loads((relayed.folder / "connection.json").read_text())
    assert (tcp["transport"], tcp["ip"]) == ("tcp", "127.0.0.1")
    assert (tcp["key"], tcp["signature_scheme"]) == (ipc["key"], ipc["signature_scheme"])
    assert len({tcp[f"{c}_port"] for c in PORTS}) == 5
    assert (relayed.folder / "tcp.json").stat().st_mode & 0o777 == 0o600


def test_router_dealer_routes_by_identity_across_the_relay(relayed: Relayed) -> None:
    # Two peers on one channel: the ROUTER behind the relay tells them apart
    # by the identities they announced in their ZMTP handshakes.
    first = relayed.socket(zmq.DEALER, "shell", identity=b"first")
    second = relayed.socket(zmq.DEALER, "shell", identity=b"second")
    for round_ in range(20):
        first.send_multipart([b"one", str(round_).encode()])
        second.send_multipart([b"two", str(round_).encode(), b""])
        assert first.recv_multipart() == [b"one", str(round_).encode()]
        assert second.recv_multipart() == [b"two", str(round_).encode(), b""]
    control = relayed.socket(zmq.DEALER, "control")
    control.send_multipart([b"on", b"control"])
    assert control.recv_multipart() == [b"on", b"control"]


def test_pub_sub_subscriptions_cross_the_relay(relayed: Relayed) -> None:
    wanted = relayed.socket(zmq.SUB, "iopub")
    wanted.setsockopt(zmq.SUBSCRIBE, b"wanted")
    everything = relayed.socket(zmq.SUB, "iopub")
    everything.setsockopt(zmq.SUBSCRIBE, b"")
    shell = relayed.socket(zmq.DEALER, "shell")
    # A subscription reaches the PUB asynchronously: publish until one arrives.
    deadline = time.monotonic() + 10
    while True:
        shell.send_multipart([b"wanted", b"hello"])
        shell.recv_multipart()
        if wanted.poll(100) and everything.poll(100):
            break
        assert time.monotonic() < deadline, "no subscription reached the kernel"
    while wanted.poll(100):
        assert wanted.recv_multipart() == [b"wanted", b"hello"]
    while everything.poll(100):
        everything.recv_multipart()
    shell.send_multipart([b"other", b"topic"])
    shell.send_multipart([b"wanted", b"again"])
    shell.recv_multipart()
    shell.recv_multipart()
    assert everything.recv_multipart() == [b"other", b"topic"]
    assert everything.recv_multipart() == [b"wanted", b"again"]
    assert wanted.recv_multipart() == [b"wanted", b"again"], "the SUB's filter was kept"


def test_heartbeat_req_rep_and_a_large_message(relayed: Relayed) -> None:
    hb = relayed.socket(zmq.REQ, "hb")
    for _ in range(5):
        hb.send(b"ping")
        assert hb.recv() == b"ping"
    stdin = relayed.socket(zmq.DEALER, "stdin")
    big = os.urandom(24 * 1024 * 1024)  # far beyond any socket buffer: flow control
    stdin.send_multipart([b"big", big])
    assert stdin.recv_multipart() == [b"big", big]


@pytest.mark.parametrize("relayed", ["1.0"], indirect=True)
def test_peers_connecting_before_the_kernel_binds_are_served(relayed: Relayed) -> None:
    shell = relayed.socket(zmq.DEALER, "shell")
    shell.send_multipart([b"early", b"bird"])  # the kernel sleeps 1 s before binding
    assert shell.recv_multipart() == [b"early", b"bird"]


def test_exit_status_and_cleanup(relayed: Relayed) -> None:
    shell = relayed.socket(zmq.DEALER, "shell")
    shell.send_multipart([b"x", b"y"])
    shell.recv_multipart()
    assert len(relayed.sockets) == 5
    shell.send_multipart([b"exit", b"7"])
    assert relayed.process.wait(10) == 7
    assert relayed.sockets == []
    assert not (relayed.folder / "tcp.json").exists()


def test_sigterm_is_forwarded_and_death_by_signal_reported(relayed: Relayed) -> None:
    kernel = relayed.kernel_pid()
    relayed.process.send_signal(signal.SIGTERM)
    assert relayed.process.wait(10) == 128 + signal.SIGTERM
    assert wait_gone(kernel)
    assert relayed.sockets == []


def test_sigint_is_forwarded_to_the_kernel(tmp_path: Path) -> None:
    kernel = tmp_path / "kernel.py"
    kernel.write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: sys.exit(42))\n"
        "open(sys.argv[1] + '.ready', 'w').close()\n"
        "time.sleep(60)\n"
    )
    process = start_relay(tmp_path, [sys.executable, str(kernel), str(tmp_path / "k")])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "k.ready").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 42
    finally:
        if process.poll() is None:
            process.kill()


def test_a_relay_whose_parent_dies_stops_its_kernel(tmp_path: Path) -> None:
    # Unsealed, the proxy is the relay's parent and names itself in
    # JPY_PARENT_PID, as for ipykernel; SIGKILL the parent and see.
    peer = tmp_path / "peer.py"
    peer.write_text(PEER)
    ports = {f"{c}_port": p for c, p in PORTS.items()}
    (tmp_path / "connection.json").write_text(
        json.dumps({"ip": str(tmp_path / "k"), "key": "k", **ports})
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "os.environ['JPY_PARENT_PID'] = str(os.getpid())\n"
            "subprocess.Popen(sys.argv[1:])\n"
            "time.sleep(60)\n",
            sys.executable,
            str(relay_script()),
            "--ipc-connection",
            str(tmp_path / "connection.json"),
            "--tcp-connection",
            str(tmp_path / "tcp.json"),
            "--",
            sys.executable,
            str(peer),
            "{connection_file}",
        ]
    )
    relayed = Relayed(parent, tmp_path, zmq.Context(), {})
    try:
        kernel = relayed.kernel_pid()
        parent.kill()
        parent.wait()
        assert wait_gone(kernel, timeout=10), "the kernel outlived the relay's parent"
        deadline = time.monotonic() + 5
        while relayed.sockets and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relayed.sockets == []
    finally:
        relayed.context.destroy(linger=0)
        if parent.poll() is None:
            parent.kill()


def test_xeus_python_interrupts_reach_only_a_running_cell(tmp_path: Path) -> None:
    # A stand-in for xeus-python's launcher: it idles in its own module code
    # (where an interrupt must change nothing), then runs a "cell" compiled
    # from $TMPDIR/xpython_<pid>/, as xeus-python does, and reports how it ended.
    module = tmp_path / "fake_xpython_launcher.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import os, sys, tempfile, time
            done = {str(tmp_path)!r}
            def mark(name):
                open(os.path.join(done, name), "w").close()
            mark("idle")
            try:
                time.sleep(1.5)
            except KeyboardInterrupt:
                mark("interrupted-while-idle")
            cells = os.path.join(tempfile.gettempdir(), f"xpython_{{os.getpid()}}")
            os.makedirs(cells, exist_ok=True)
            cell = os.path.join(cells, "cell.py")
            with open(cell, "w") as handle:
                handle.write("while True: pass\\n")
            code = compile(open(cell).read(), cell, "exec")
            mark("busy")
            try:
                exec(code, {{}})
            except KeyboardInterrupt:
                mark("interrupted")
                time.sleep(0.5)  # idle again: a second interrupt changes nothing
            mark("survived")
            """
        )
    )
    process = start_relay(
        tmp_path,
        [sys.executable, "-m", "fake_xpython_launcher"],
        extra=("--xeus-python-interrupt",),
        env={"PYTHONPATH": str(tmp_path)},
    )

    def wait_for(name: str) -> None:
        deadline = time.monotonic() + 10
        while not (tmp_path / name).exists():
            assert time.monotonic() < deadline, f"never reached {name}"
            assert process.poll() is None, f"exited with {process.returncode} before {name}"
            time.sleep(0.01)

    try:
        wait_for("idle")
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # while idle: ignored
        wait_for("busy")
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # in the cell: KeyboardInterrupt
        wait_for("interrupted")
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        assert (tmp_path / "survived").exists()
        assert not (tmp_path / "interrupted-while-idle").exists()
    finally:
        if process.poll() is None:
            process.kill()
    assert not pid_alive(process.pid)
