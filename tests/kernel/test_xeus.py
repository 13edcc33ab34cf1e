"""xeus-python from PyPI, a kernel that binds only TCP, behind nbseal's relay.

The real nbseal kernel is driven through jupyter_client; the environment is
built from the package index like any other. Sealed, the kernel's TCP ports
are on the sandbox's own loopback and the relay serves nbseal's ipc sockets;
unsealed (``--no-sandbox``) the same relay runs as a plain child.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from nbseal.backends.kernelspecs import find_kernel_command, kernel_transport
from nbseal.sandbox.launch import LaunchRequest, Relay
from tests.kernel.helpers import Result, collect, execute, pid_alive, running_kernel, wait_gone

pytestmark = pytest.mark.usefixtures("default_env")

Pair = tuple[KernelManager, BlockingKernelClient]

# 2026-11-01 resolves xeus-python 0.19.0 (xeus 6); 2025-06-01 gives 0.15.12 (xeus 3).
PINS = {"xeus-python-0.19": "2026-11-01", "xeus-python-0.15": "2025-06-01"}
XEUS_ENV = "#seal env xpy <- xeus-python kernel=xpython pin={pin}\n"
# Only a xeus-python process has its extension loaded; the sockets it listens
# on are TCP (its connection file is gone once it started: it holds the key).
WHO = (
    "import os as _o, socket as _k, struct as _t, sys as _s\n"
    "def _link(d):\n"
    "    try:\n"
    "        return _o.readlink(f'/proc/self/fd/{d}')\n"
    "    except OSError:\n"
    "        return ''  # the fd listdir itself used\n"
    "_f = [_link(d) for d in _o.listdir('/proc/self/fd')]\n"
    "_i = {f[8:-1] for f in _f if f.startswith('socket:[')}\n"
    "_l = [l.split() for l in open('/proc/net/tcp').read().splitlines()[1:]]\n"
    "_ips = sorted({_k.inet_ntoa(_t.pack('<I', int(l[1].split(':')[0], 16)))\n"
    "              for l in _l if l[3] == '0A' and l[9] in _i})\n"
    "print('xpython' in _s.modules, 'xeus_python_shell' in _s.modules,\n"
    "      'tcp' if _ips else 'none', *_ips)"
)


def _result_text(result: Result) -> str:
    (out,) = result.of_type("execute_result")
    return str(out["content"]["data"]["text/plain"])


def _interrupt_while_running(km: KernelManager, kc: BlockingKernelClient, code: str) -> Result:
    msg_id = kc.execute(code)
    # Wait until the cell runs (execute_input is published as it starts).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            break
    time.sleep(0.5)
    started = time.monotonic()
    km.interrupt_kernel()
    result = collect(kc, msg_id, timeout=15)
    assert time.monotonic() - started < 10, "the interrupt did not end the cell"
    return result


@pytest.fixture(scope="module", params=sorted(PINS), ids=sorted(PINS))
def kernel(request: pytest.FixtureRequest) -> Iterator[Pair]:
    with running_kernel() as pair:
        _, kc = pair
        first = execute(kc, XEUS_ENV.format(pin=PINS[request.param]) + "1+1", timeout=600)
        assert first.status == "ok", first.reply["content"]
        assert _result_text(first) == "2"
        yield pair


@pytest.fixture
def canary() -> Iterator[Path]:
    path = Path.home() / f".nbseal-canary-{secrets.token_hex(4)}"
    path.write_text("must not be read from a sealed kernel")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_xeus_python_answers_through_the_relay(
    kernel: Pair, request: pytest.FixtureRequest
) -> None:
    _, kc = kernel
    who = execute(kc, WHO)
    assert who.status == "ok", who.reply["content"]
    assert who.stdout.split() == ["True", "True", "tcp", "127.0.0.1"]
    described = execute(kc, "#seal describe").of_type("display_data")[0]["content"]["data"]
    rows = {
        row["environment"].split()[0]: row
        for row in described["application/vnd.nbseal.describe+json"]
    }
    assert rows["xpy"]["kernel"] == "xpython"
    assert rows["xpy"]["language"] == "python"
    version = request.node.callspec.id.removeprefix("xeus-python-")
    assert any(p.startswith(f"xeus-python=={version}.") for p in rows["xpy"]["packages"])


def test_state_is_kept_between_cells(kernel: Pair) -> None:
    _, kc = kernel
    assert execute(kc, "#seal env xpy\nkept = [41]").status == "ok"
    assert _result_text(execute(kc, "kept.append(kept[0] + 1); kept")) == "[41, 42]"
    # Streams and rich output pass the relay in both directions.
    printed = execute(kc, "print('x' * 100_000)")
    assert printed.stdout == "x" * 100_000 + "\n"


def test_a_busy_loop_is_interrupted_and_the_kernel_keeps_its_state(kernel: Pair) -> None:
    km, kc = kernel
    execute(kc, "#seal env xpy\nimport os\nmarker = os.urandom(8).hex()\nmarker_pid = os.getpid()")
    before = execute(kc, "print(marker, marker_pid)").stdout
    result = _interrupt_while_running(km, kc, "while True: pass")
    assert result.status == "error"
    assert "KeyboardInterrupt" in result.reply["content"]["ename"]
    # Stock xeus-python would have exited on SIGINT (xeus-python#527).
    after = execute(kc, "print(marker, os.getpid())")
    assert after.status == "ok", after.reply["content"]
    assert after.stdout == before


def test_a_blocking_call_is_interrupted(kernel: Pair) -> None:
    km, kc = kernel
    execute(kc, "#seal env xpy\nimport time")
    result = _interrupt_while_running(km, kc, "time.sleep(120)")
    assert "KeyboardInterrupt" in result.reply["content"]["ename"]
    assert _result_text(execute(kc, "marker_pid == os.getpid()")) == "True"


def test_an_interrupt_while_idle_changes_nothing(kernel: Pair) -> None:
    km, kc = kernel
    execute(kc, "#seal env xpy\nidle = 'still here'")
    km.interrupt_kernel()
    time.sleep(1.0)
    assert _result_text(execute(kc, "idle")) == "'still here'"


def test_the_sandbox_holds_around_xeus(kernel: Pair, canary: Path) -> None:
    _, kc = kernel
    probe = execute(
        kc,
        "#seal env xpy\nimport socket\n"
        f"try:\n    open({str(canary)!r}).read(); print('read')\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('connected')\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
        "print(sorted(os.listdir('/run/nbseal')))",
    )
    assert probe.status == "ok", probe.reply["content"]
    lines = probe.stdout.splitlines()
    assert lines[0] in {"FileNotFoundError", "PermissionError"}
    assert lines[1] == "OSError"
    assert lines[2] == "['tcp_relay.py']"


def test_with_the_network_allowed_the_relay_uses_the_shared_loopback() -> None:
    # No network namespace of its own: the relay's TCP ports are on the host's
    # loopback (free ones, picked there); the kernel gets a key of its own.
    with running_kernel() as (_, kc):
        env = XEUS_ENV.format(pin=PINS["xeus-python-0.19"])
        first = execute(kc, "#seal allow network\n" + env + "x = 6 * 7\nx", timeout=600)
        assert first.status == "ok", first.reply["content"]
        assert _result_text(first) == "42"
        assert execute(kc, WHO).stdout.split()[2:] == ["tcp", "127.0.0.1"]


def test_the_transport_rule() -> None:
    assert kernel_transport(["/env/bin/python", "-m", "xpython_launcher", "-f", "{c}"]) == "tcp"
    assert kernel_transport(["/opt/conda/bin/xpython", "-f", "{connection_file}"]) == "tcp"
    assert kernel_transport(["xcpp", "-f", "{connection_file}", "-std=c++17"]) == "tcp"
    assert kernel_transport(["python", "-m", "ipykernel_launcher", "-f", "{c}"]) == "ipc"
    assert kernel_transport(["python", "-m", "bash_kernel", "-f", "{c}"]) == "ipc"
    assert kernel_transport(["R", "--slave", "-e", "IRkernel::main()", "--args", "{c}"]) == "ipc"


def test_the_xeus_python_kernelspec_becomes_a_relayed_command(kernel: Pair) -> None:
    env = next(
        p for p in Path(os.environ["NBSEAL_CACHE_DIR"]).glob("envs/*/share/jupyter/kernels/xpython")
    )
    env_path = env.parents[3]
    command = find_kernel_command(env_path, "xpython")
    # The spec says "python3.11": unsealed, PATH would find the host's Python.
    assert command.argv[0] == str(env_path / "bin" / "python")
    assert (command.transport, command.xeus_python) == ("tcp", True)
    assert command.relay_python == str(env_path / "bin" / "python")
    relay = Relay(command.relay_python, Path("/s/c.json"), Path("/s/t.json"), xeus_python=True)
    request = LaunchRequest(
        command.render("/s/t.json"),
        env={},
        cwd=Path("/"),
        env_path=env_path,
        socket_dir=Path("/s"),
        log_path=Path("/s/log"),
        relay=relay,
    )
    assert request.command("/run/nbseal/tcp_relay.py") == [
        command.relay_python,
        "/run/nbseal/tcp_relay.py",
        "--ipc-connection",
        "/s/c.json",
        "--tcp-connection",
        "/s/t.json",
        "--xeus-python-interrupt",
        "--",
        str(env_path / "bin" / "python"),
        "-m",
        "xpython_launcher",
        "-f",
        "/s/t.json",
    ]


def test_unsealed_xeus_runs_behind_the_relay_and_leaves_nothing(canary: Path) -> None:
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(env={**os.environ, "NBSEAL_NO_SANDBOX": "1"})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        env = XEUS_ENV.format(pin=PINS["xeus-python-0.19"])
        first = execute(kc, env + "import os\nx = 41\nprint(os.getpid())", timeout=600)
        assert first.status == "ok", first.reply["content"]
        pid = int(first.stdout)
        assert execute(kc, WHO).stdout.split()[:3] == ["True", "True", "tcp"]
        # Unsealed, the kernel sees the user's own files: this is the other mode.
        assert execute(kc, f"print(open({str(canary)!r}).read())").stdout.startswith("must not")
        result = _interrupt_while_running(km, kc, "while True: pass")
        assert "KeyboardInterrupt" in result.reply["content"]["ename"]
        assert _result_text(execute(kc, "x + 1")) == "42"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert wait_gone(pid), "xeus-python outlived the nbseal kernel"
    assert not pid_alive(pid)
