"""The head start (sandbox/headstart.py) through `nbseal run` and a Jupyter client.

A notebook's second start runs its first kernel from the recipe the first
start kept, before the nbseal kernel has imported itself; the launcher then
takes that kernel over only if it is the one it would have started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from nbseal.runner.manager import InMemoryKernelSpecManager
from nbseal.sandbox import headstart
from tests.kernel.helpers import execute, pid_alive

pytestmark = pytest.mark.usefixtures("default_env")

EVENT = re.compile(r"\s*[\d.]+ s\s+\+\s*[\d.]+ ms\s+(.*)")
LAUNCHED = re.compile(r"proxy +head start: sandbox launched \(pid (\d+)\)")


def _notebook(folder: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = folder / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def _run(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "nbseal", "run", "-v", str(path), "-o", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _texts(path: Path) -> list[str]:
    cells = nbformat.read(path, as_version=4).cells
    return [
        "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.outputs)
        for c in cells
    ]


def _recipe_of(path: Path) -> Path:
    return headstart.recipe_file(str(path.resolve()), str(path.parent.resolve()), run=True)


def test_a_notebook_s_next_run_takes_over_the_kernel_started_ahead(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "1+1", "import os\nos.environ['LANG']")
    first = _run(path)
    assert "head start" not in first.stderr, "nothing is kept before the first start"
    recipe = _recipe_of(path)
    assert recipe.stat().st_mode & 0o777 == 0o600
    assert recipe.parent.stat().st_mode & 0o777 == 0o700
    os.utime(recipe, (0, 0))
    second = _run(path)
    assert recipe.stat().st_mtime > 0, "used now: `nbseal env gc` keeps it"
    events = [m[1] for line in second.stderr.splitlines() if (m := EVENT.fullmatch(line))]
    launched = next(i for i, e in enumerate(events) if LAUNCHED.search(e))
    imported = events.index("proxy       imports done")
    taken = events.index("proxy       head start: taken over")
    assert launched < imported < taken, "started before the proxy's imports, taken after"
    assert "head start: killed" not in second.stderr
    assert _texts(path) == ["2", "'C.UTF-8'"]


def test_a_kernel_started_ahead_that_differs_is_killed_and_the_right_one_runs(
    tmp_path: Path,
) -> None:
    """The kept recipe says LANG=C; the launch the proxy computes says C.UTF-8. The
    head start's kernel is killed, never used, and the proxy keeps the right recipe."""
    path = _notebook(tmp_path, "import os\nos.environ['LANG']")
    _run(path)
    recipe = _recipe_of(path)
    data = json.loads(recipe.read_text())
    at = data["argv"].index("LANG")
    assert data["argv"][at + 1] == "C.UTF-8"
    data["argv"][at + 1] = "C"
    recipe.write_text(json.dumps(data))
    second = _run(path)
    assert "head start: killed, its command line differs" in second.stderr
    assert "head start: taken over" not in second.stderr
    match = LAUNCHED.search(second.stderr)
    assert match is not None, second.stderr
    assert not pid_alive(int(match[1])), "the killed head start is gone"
    assert _texts(path) == ["'C.UTF-8'"]
    assert json.loads(recipe.read_text())["argv"][at + 1] == "C.UTF-8", "kept anew"


def test_a_recipe_others_may_write_or_that_is_not_bwrap_is_never_run(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "1+1")
    _run(path)
    recipe = _recipe_of(path)
    kept = recipe.read_text()
    recipe.chmod(0o666)
    refused = _run(path)
    assert re.search(r"head start: not made \(.*may be written by others", refused.stderr)
    assert "head start: sandbox launched" not in refused.stderr
    assert _texts(path) == ["2"]
    # Owned by the user and private, but not a sandbox: refused before anything runs.
    marker = tmp_path / "escaped"
    data = json.loads(kept)
    data["argv"] = ["/bin/sh", "-c", f"touch {marker}", *data["argv"]]
    recipe.write_text(json.dumps(data))
    recipe.chmod(0o600)
    hostile = _run(path)
    assert "head start: not made (" in hostile.stderr
    assert "head start: sandbox launched" not in hostile.stderr
    assert not marker.exists()
    assert _texts(path) == ["2"]


def test_the_head_start_can_be_turned_off(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "1+1")
    _run(path)
    off = _run(path, NBSEAL_HEAD_START="0")
    assert "head start" not in off.stderr
    assert _texts(path) == ["2"]


def test_a_kernel_taken_over_answers_stdin_interrupts_and_restarts(tmp_path: Path) -> None:
    """A Jupyter client's kernel of the second start is the head start's, and it does
    all a kernel does: input(), an interrupt, a restart (a new process)."""
    path = _notebook(tmp_path, "1+1")
    timeline = tmp_path / "timeline"
    env = {"JPY_SESSION_NAME": str(path), "NBSEAL_TIMELINE": str(timeline)}

    def started() -> tuple[KernelManager, object]:
        km = KernelManager(kernel_name="nbseal", kernel_spec_manager=InMemoryKernelSpecManager())
        km.start_kernel(cwd=str(tmp_path), env={**os.environ, **env})
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        return km, kc

    km, kc = started()
    execute(kc, "1+1")  # its first kernel runs: the recipe is kept
    kc.stop_channels()
    km.shutdown_kernel(now=False)
    timeline.unlink()
    km, kc = started()
    try:
        started_at = "open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19]"
        first = execute(kc, started_at)
        assert first.status == "ok"
        assert "head start: taken over" in timeline.read_text()
        # stdin through the proxy
        msg_id = kc.execute("answer = input('? ')", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=60)
        assert request["content"]["prompt"] == "? "
        kc.input("forty-two")
        while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
            pass
        assert (
            execute(kc, "answer").of_type("execute_result")[0]["content"]["data"]["text/plain"]
            == "'forty-two'"
        )
        # an interrupt
        msg_id = kc.execute("import time\nprint('asleep', flush=True)\ntime.sleep(60)")
        while True:  # the cell runs (its handler of SIGINT is in place)
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        # a restart: a new process (another start time), an empty namespace
        before = first.of_type("execute_result")[0]["content"]["data"]["text/plain"]
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=120)
        after = execute(kc, started_at)
        assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] != before
        assert execute(kc, "answer").status == "error"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
