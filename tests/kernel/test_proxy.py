"""The proxy's behaviour with a real ipykernel behind it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from queue import Empty

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from tests.kernel.helpers import (
    collect,
    execute,
    host_pid_of_kernel,
    pid_alive,
    running_kernel,
    start_busy_loop,
    wait_gone,
)

pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    with running_kernel() as pair:
        yield pair


def sub_pid(kc: BlockingKernelClient) -> int:
    return host_pid_of_kernel(kc)


def test_kernel_info_describes_the_sub_kernel(kernel) -> None:
    _, kc = kernel
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=10)["content"]
    assert reply["implementation"] == "nbseal"
    assert reply["language_info"]["name"] == "python"
    assert reply["protocol_version"] == "5.3"


def test_execution_count_is_the_proxy_s_and_outputs_keep_their_parent(kernel) -> None:
    _, kc = kernel
    first = execute(kc, "1+1")
    second = execute(kc, "print('x'); 40+2")
    assert first.reply["content"]["execution_count"] == 1
    assert second.reply["content"]["execution_count"] == 2
    (result,) = second.of_type("execute_result")
    assert result["content"]["execution_count"] == 2
    assert result["content"]["data"]["text/plain"] == "42"
    (echo,) = second.of_type("execute_input")
    assert echo["content"]["code"] == "print('x'); 40+2"
    assert second.stdout == "x\n"


def test_input_and_getpass_reach_the_frontend(kernel) -> None:
    _, kc = kernel
    msg_id = kc.execute(
        "import getpass\nname = input('name? ')\nsecret = getpass.getpass('pw? ')\n"
        "print(name, len(secret))",
        allow_stdin=True,
    )
    prompts = []
    for answer in ("ada", "hunter2"):
        request = kc.get_stdin_msg(timeout=30)
        assert request["msg_type"] == "input_request"
        assert request["parent_header"]["msg_id"] == msg_id
        prompts.append((request["content"]["prompt"], request["content"]["password"]))
        kc.input(answer)
    result = collect(kc, msg_id)
    assert prompts == [("name? ", False), ("pw? ", True)]
    assert result.stdout == "ada 7\n"


def test_input_request_waits_for_a_frontend_stdin_that_connects_late(kernel) -> None:
    # A frontend may connect its stdin socket after sending the request
    # (jupyter_client makes channels lazily). The proxy's stdin ROUTER would
    # drop the input_request silently; it must wait for the socket instead.
    km, _ = kernel
    # Its own session: km.client()'s would share the fixture client's identity.
    late = km.client(session=Session(key=km.session.key))
    late.start_channels(shell=True, iopub=True, stdin=False, hb=False)
    try:
        msg_id = late.execute("print(input('who? '))", allow_stdin=True)
        time.sleep(1.5)  # the input_request is sent (and refused) meanwhile
        late.stdin_channel.start()
        request = late.get_stdin_msg(timeout=30)
        assert request["parent_header"]["msg_id"] == msg_id
        assert request["content"]["prompt"] == "who? "
        late.input("grace")
        assert collect(late, msg_id).stdout == "grace\n"
    finally:
        late.stop_channels()


def test_comm_round_trip_both_ways(kernel) -> None:
    _, kc = kernel
    setup = execute(
        kc,
        "def _target(comm, msg):\n"
        "    @comm.on_msg\n"
        "    def _echo(m):\n"
        "        comm.send({'echo': m['content']['data']['value'] * 2})\n"
        "get_ipython().kernel.comm_manager.register_target('nbseal-echo', _target)\n",
    )
    assert setup.status == "ok"
    comm_id = "c0ffee"
    kc.session.send(
        kc.shell_channel.socket,
        "comm_open",
        {"comm_id": comm_id, "target_name": "nbseal-echo", "data": {}},
    )
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"value": 21}})
    kc.shell_channel.send(msg)
    deadline = time.monotonic() + 20
    echoed = None
    while time.monotonic() < deadline and echoed is None:
        out = kc.get_iopub_msg(timeout=20)
        if out["msg_type"] == "comm_msg" and out["content"]["comm_id"] == comm_id:
            echoed = out
    assert echoed is not None
    assert echoed["content"]["data"] == {"echo": 42}
    assert echoed["parent_header"]["msg_id"] == msg["header"]["msg_id"]
    # comm_info lists it; the kernel side can open comms too
    kc.comm_info()
    info = kc.get_shell_msg(timeout=10)["content"]
    assert comm_id in info["comms"]
    opened = execute(
        kc, "from comm import create_comm\nc = create_comm(target_name='t', data={'hi': 1})"
    )
    (open_msg,) = opened.of_type("comm_open")
    assert open_msg["content"]["data"] == {"hi": 1}


def test_interrupt_stops_a_busy_loop(kernel) -> None:
    km, kc = kernel
    msg_id = start_busy_loop(kc)
    km.interrupt_kernel()
    result = collect(kc, msg_id, timeout=30)
    assert result.status == "error"
    assert result.reply["content"]["ename"] == "KeyboardInterrupt"
    assert execute(kc, "'still here'").of_type("execute_result")


def test_restart_and_shutdown_leave_no_process(kernel) -> None:
    km, kc = kernel
    old = sub_pid(kc)
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    assert wait_gone(old), "the sub-kernel survived a restart"
    new = sub_pid(kc)
    assert new != old
    proxy = km.provisioner.process.pid
    km.shutdown_kernel(now=False)
    assert wait_gone(new), "the sub-kernel survived shutdown"
    assert wait_gone(proxy)


def test_a_shutdown_is_answered_on_control_and_iopub_before_the_proxy_exits(kernel) -> None:
    # The proxy exits as soon as its kernels are stopped: the replies it queued
    # last must still leave (its sockets close with a linger, nothing is dropped).
    km, kc = kernel
    execute(kc, "1 + 1")
    proxy = km.provisioner.process
    msg = kc.session.msg("shutdown_request", {"restart": False})
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=30)
    assert reply["msg_type"] == "shutdown_reply", reply
    assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
    assert reply["content"] == {"status": "ok", "restart": False}
    seen = []
    while "shutdown_reply" not in seen:
        seen.append(kc.get_iopub_msg(timeout=30)["msg_type"])
    assert proxy.wait(timeout=30) == 0


def test_killed_sub_kernel_fails_the_cell_and_the_next_one_starts_fresh(kernel) -> None:
    km, kc = kernel
    pid = sub_pid(kc)
    msg_id = kc.execute("import time; time.sleep(60)")
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    result = collect(kc, msg_id, timeout=30)
    assert result.status == "error"
    assert result.reply["content"]["ename"] == "KernelDiedError"
    assert "SIGKILL" in result.reply["content"]["evalue"]
    (error,) = result.of_type("error")
    assert "next cell starts a fresh kernel" in "\n".join(error["content"]["traceback"])
    assert km.is_alive()
    after = execute(kc, "'fresh'")
    assert after.status == "ok"
    assert sub_pid(kc) != pid
    assert after.reply["content"]["execution_count"] == 3  # the count goes on


def test_each_iopub_subscriber_is_welcomed_once_and_sub_kernels_welcomes_stay_inside(
    kernel,
) -> None:
    """JEP 65, as ipykernel 7 does: a client knows its subscription took effect."""
    km, kc = kernel
    late = km.client(session=Session(key=km.session.key))  # a second frontend
    late.start_channels()
    try:
        welcome = late.get_iopub_msg(timeout=10)
        assert welcome["msg_type"] == "iopub_welcome"
        assert welcome["content"] == {"subscription": ""}
        # A fresh sub-kernel welcomes the proxy's subscription: not the frontend's business.
        pid = sub_pid(kc)
        os.kill(pid, signal.SIGKILL)
        assert wait_gone(pid)
        first = execute(kc, "'first'")  # an error or a fresh kernel's answer
        after = execute(kc, "'fresh'")
        assert after.status == "ok"
        assert sub_pid(kc) != pid
        seen = [m["msg_type"] for r in (first, after) for m in r.outputs + r.others]
        while True:
            try:
                seen.append(late.get_iopub_msg(timeout=1)["msg_type"])
            except Empty:
                break
        assert "iopub_welcome" not in seen, seen
        assert "execute_result" in seen
    finally:
        late.stop_channels()


def test_killed_proxy_takes_its_sub_kernel_with_it(kernel) -> None:
    km, kc = kernel
    pid = sub_pid(kc)
    os.kill(km.provisioner.process.pid, signal.SIGKILL)
    assert wait_gone(pid, timeout=15)


def test_error_aborts_queued_cells(kernel) -> None:
    _, kc = kernel
    failing = kc.execute("import time; time.sleep(0.5); 1/0")
    queued = kc.execute("print('must not run')")
    assert collect(kc, failing).status == "error"
    aborted = collect(kc, queued)
    assert aborted.status == "aborted"
    assert aborted.stdout == ""


def test_directive_cells_are_answered_by_the_proxy(kernel) -> None:
    _, kc = kernel
    described = execute(kc, "#seal describe")
    assert described.status == "ok"
    (table,) = described.of_type("display_data")
    assert "<table" in table["content"]["data"]["text/html"]
    assert "ipykernel==7.4.0" in table["content"]["data"]["text/plain"]
    helped = execute(kc, "#seal help\nprint('and code')")
    assert "#seal env NAME <- REQ" in helped.stdout
    assert helped.stdout.endswith("and code\n")
    bad = execute(kc, "print('never')\n#seal describe")
    assert bad.status == "error"
    assert bad.reply["content"]["ename"] == "DirectiveError"
    assert "line 2" in bad.reply["content"]["evalue"]
    assert bad.stdout == ""
    # Short: what was wrong and what to do, not nbseal's own Python stack.
    assert not any("Traceback (most recent" in t for t in bad.reply["content"]["traceback"])


def test_nbseal_traceback_shows_where_in_nbseal_an_error_came_from() -> None:
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(env={**os.environ, "NBSEAL_TRACEBACK": "1"})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        bad = execute(kc, "#seal nonsense")
        assert bad.reply["content"]["ename"] == "DirectiveError"
        stack = bad.reply["content"]["traceback"][-1]
        assert "Traceback (most recent call last)" in stack
        assert "parser.py" in stack
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_many_clients_messages_interleave(kernel) -> None:
    # A completion while a cell runs is answered, as with ipykernel.
    _, kc = kernel
    asked = {kc.execute("import time; time.sleep(1)"), kc.complete("pri", 3)}
    replies = {}
    while len(replies) < 2:
        reply = kc.get_shell_msg(timeout=20)
        # A late kernel_info_reply of wait_for_ready's probing may come first.
        if reply["parent_header"].get("msg_id") in asked:
            replies[reply["msg_type"]] = reply["content"]
    assert replies["execute_reply"]["status"] == "ok"
    assert "print" in replies["complete_reply"]["matches"]


def test_pid_helper_sees_itself() -> None:
    assert pid_alive(os.getpid())


def test_sub_kernel_startup_status_does_not_reach_the_frontend(kernel) -> None:
    _, kc = kernel
    pid = sub_pid(kc)
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    time.sleep(1.0)  # let the proxy reap it; a cell sent at the instant of death fails
    # the next cell starts a fresh sub-kernel, which announces "starting"
    result = execute(kc, "'fresh'")
    assert result.status == "ok"
    deadline = time.monotonic() + 2
    states = []
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Exception:
            continue
        if msg["msg_type"] == "status":
            states.append(msg["content"]["execution_state"])
    assert "starting" not in states
