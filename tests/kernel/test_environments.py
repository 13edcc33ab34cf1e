"""Declared environments with real uv against the package index."""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Iterator

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from tests.kernel.helpers import execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture(scope="module")
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    with running_kernel() as pair:
        yield pair


def test_two_pins_hold_two_versions(kernel) -> None:
    _, kc = kernel
    old = execute(
        kc,
        "#seal pin 2024-06-01\n#seal env old <- six\nimport six; print(six.__version__)",
        timeout=300,
    )
    assert old.status == "ok", old.reply["content"]
    assert old.stdout.strip().endswith("1.16.0")
    new = execute(
        kc, "#seal env new <- six pin=2025-06-01\nimport six; print(six.__version__)", timeout=300
    )
    assert new.status == "ok", new.reply["content"]
    assert new.stdout.strip().endswith("1.17.0")
    progress = [m for m in new.outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert progress, "a build shows progress in the cell"
    assert "packages" in progress[-1]["content"]["data"]["text/plain"]
    back = execute(kc, "#seal env old\nimport six; print(six.__version__)")
    assert back.stdout.strip() == "1.16.0"
    described = execute(kc, "#seal describe")
    text = described.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert "six==1.16.0" in text
    assert "six==1.17.0" in text


def test_bad_directives_change_nothing(kernel) -> None:
    _, kc = kernel
    before = execute(kc, "#seal env old\nx = 'kept'")
    assert before.status == "ok"
    bad = execute(kc, "#seal env new\n#seal env nowhere\nprint('ran')")
    assert bad.reply["content"]["ename"] == "DirectiveError"
    assert "line 2" in bad.reply["content"]["evalue"]
    assert bad.stdout == ""
    # still in "old": the valid first line did not take effect
    assert execute(kc, "print(x)").stdout == "kept\n"


def test_unknown_package_shows_the_resolver_reason(kernel) -> None:
    _, kc = kernel
    result = execute(kc, "#seal env nope <- nbseal-no-such-package-xyz==1.0\n1", timeout=120)
    assert result.status == "error"
    assert result.reply["content"]["ename"] == "ResolutionError"
    assert "nbseal-no-such-package-xyz" in "\n".join(result.reply["content"]["traceback"])
    # No kernel runs in "nope": a comm the page opens is closed, not left hanging.
    opened = kc.session.msg("comm_open", {"comm_id": "c-nope", "target_name": "t", "data": {}})
    kc.shell_channel.send(opened)
    deadline = time.monotonic() + 10
    closed = []
    while time.monotonic() < deadline and not closed:
        with contextlib.suppress(queue.Empty):
            out = kc.get_iopub_msg(timeout=1)
            if out["msg_type"] == "comm_close" and out["content"]["comm_id"] == "c-nope":
                closed.append(out)
    assert closed


def test_unsatisfiable_pin_shows_the_resolver_reason_and_changes_nothing(kernel) -> None:
    _, kc = kernel
    execute(kc, "#seal env old\nmarker = 'still here'")
    # six 1.17.0 was released in December 2024: it does not exist as of 2020.
    result = execute(kc, "#seal env future <- six>=1.17 pin=2020-01-01\n1", timeout=120)
    assert result.reply["content"]["ename"] == "ResolutionError"
    assert "six" in "\n".join(result.reply["content"]["traceback"])
    assert execute(kc, "#seal env old\nprint(marker)").stdout == "still here\n"


def test_a_failed_environment_is_not_built_again_until_redefined(kernel) -> None:
    _, kc = kernel
    define = "#seal env gone <- nonexistent-package-nbseal-xyz pin=2025-06-01\n1"
    first = execute(kc, define, timeout=120)
    assert first.reply["content"]["ename"] == "ResolutionError"
    assert first.reply["content"]["evalue"] == (
        "uv could not resolve the environment: No solution found when resolving dependencies: "
        "nonexistent-package-nbseal-xyz was not found in the package registry and you require "
        "nonexistent-package-nbseal-xyz"
    )
    # The same declaration again, or a cell in it: a short error at once, nothing resolved.
    for code in (define, "#seal env gone\n1"):
        again = execute(kc, code)
        content = again.reply["content"]
        assert content["ename"] == "EnvironmentFailedError", content
        assert content["evalue"] == (
            "environment 'gone' failed to build in an earlier cell; not built again"
        )
        traceback = "\n".join(content["traceback"])
        assert "cause: No solution found when resolving dependencies" in traceback
        shown = [m for m in again.outputs if "data" in m["content"]]
        assert shown == [], "no build was started"
    # A new definition is built afresh.
    fixed = execute(
        kc,
        "#seal env gone <- six==1.16.0 pin=2025-06-01\nimport six; print(six.__version__)",
        timeout=300,
    )
    assert fixed.status == "ok", fixed.reply["content"]
    assert fixed.stdout.strip().endswith("1.16.0")


def test_the_define_cell_ends_with_a_summary_and_the_lock(kernel) -> None:
    _, kc = kernel
    first = execute(kc, "#seal env old <- six pin=2024-06-01", timeout=120)
    again = execute(kc, "#seal env old <- six pin=2024-06-01")
    for result in (first, again):
        shown = [m["content"]["data"] for m in result.outputs if "data" in m["content"]]
        assert shown, "a define cell always ends with its summary"
        assert "packages" in shown[-1]["text/plain"]
        lock = shown[-1]["application/vnd.nbseal.lock+json"]
        assert lock["environment"] == "old"
        assert lock["lock"]["exclude_newer"] == "2024-06-01T00:00:00Z"
        assert 'name = "six"' in lock["lock"]["pylock"]
    # The re-run built nothing: it must not repeat the first run's story.
    summary = [m for m in again.outputs if "data" in m["content"]][-1]["content"]["data"]
    assert "already running" in summary["text/plain"]
    assert "built" not in summary["text/plain"]


def test_redefining_an_environment_leaks_no_proxy_traffic(kernel) -> None:
    _, kc = kernel
    execute(kc, "#seal env leak <- six pin=2024-06-01\nimport six", timeout=120)
    changed = execute(kc, "#seal env leak <- six pin=2025-06-01\nimport six", timeout=120)
    assert changed.status == "ok", changed.reply["content"]
    # The old kernel's shutdown_reply and the new kernel's kernel_info
    # busy/idle belong to the proxy's own requests, not to the page.
    # (Late messages answering this client's earlier requests are not leaks.)
    ours = kc.session.session
    leaked = [
        (m["msg_type"], m["content"])
        for m in changed.others
        if m["parent_header"].get("session") != ours
    ]
    assert leaked == []
    assert not changed.of_type("shutdown_reply")


def test_ipywidgets_slider_drives_a_dependent_output(kernel) -> None:
    _, kc = kernel
    made = execute(
        kc,
        "#seal env w <- ipywidgets==8.1.5 pin=2025-06-01\n"
        "import ipywidgets as w\n"
        "s = w.IntSlider(value=1)\n"
        "s.observe(lambda ch: print('doubled', 2 * ch['new']), names='value')\n"
        "display(s)",
        timeout=300,
    )
    assert made.status == "ok", made.reply["content"]
    opens = made.of_type("comm_open")
    slider = next(
        m for m in opens if m["content"]["data"]["state"]["_model_name"] == "IntSliderModel"
    )
    comm_id = slider["content"]["comm_id"]
    assert any(
        "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
        for m in made.of_type("display_data")
    )
    msg = kc.session.msg(
        "comm_msg",
        {
            "comm_id": comm_id,
            "data": {"method": "update", "state": {"value": 21}, "buffer_paths": []},
        },
    )
    kc.shell_channel.send(msg)
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline and "doubled 42" not in seen:
        out = kc.get_iopub_msg(timeout=30)
        if (
            out["msg_type"] == "stream"
            and out["parent_header"].get("msg_id") == msg["header"]["msg_id"]
        ):
            seen += out["content"]["text"]
    assert "doubled 42" in seen
    assert execute(kc, "print(s.value)").stdout == "21\n"


def _control_states(kc: BlockingKernelClient) -> list[dict]:
    """What JupyterLab does after a page reload: ask the control comm for all states."""
    comm_id = uuid.uuid4().hex
    opened = kc.session.msg(
        "comm_open",
        {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},  # ipywidgets 8 control protocol
    )
    kc.shell_channel.send(opened)
    asked = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
    kc.shell_channel.send(asked)
    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            out = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if out["msg_type"] == "comm_msg" and out["content"]["comm_id"] == comm_id:
            answers.append(out)
    kc.shell_channel.send(kc.session.msg("comm_close", {"comm_id": comm_id, "data": {}}))
    return answers


def test_widgets_of_every_environment_come_back_after_a_reload(kernel) -> None:
    _, kc = kernel
    made = {}
    for env in ("wa", "wb"):
        result = execute(
            kc,
            f"#seal env {env} <- ipywidgets==8.1.5 pin=2025-06-01\n"
            "import ipywidgets as w\n"
            f"s = w.IntSlider(value=7, description='{env}')\n"
            "print(s.model_id)",
            timeout=300,
        )
        assert result.status == "ok", result.reply["content"]
        made[env] = result.stdout.strip()
    # wb is current; wa's slider lives in another kernel.
    answers = _control_states(kc)
    assert len(answers) == 1, "the frontend takes the first update_states: it must be merged"
    states = answers[0]["content"]["data"]["states"]
    assert made["wa"] in states
    assert made["wb"] in states
    assert states[made["wa"]]["state"]["description"] == "wa"

    kc.comm_info(target_name="jupyter.widget")
    info = kc.get_shell_msg(timeout=30)["content"]
    assert {made["wa"], made["wb"]} <= set(info["comms"])

    # The restored slider of wa still drives wa's kernel while wb is current.
    update = kc.session.msg(
        "comm_msg",
        {
            "comm_id": made["wa"],
            "data": {"method": "update", "state": {"value": 3}, "buffer_paths": []},
        },
    )
    kc.shell_channel.send(update)
    time.sleep(1)
    assert execute(kc, "#seal env wa\nprint(s.value)").stdout == "3\n"
    assert execute(kc, "#seal env wb\nprint(s.value)").stdout == "7\n"
