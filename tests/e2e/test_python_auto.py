"""``python=auto``: the Python current at the pin, where one can be had.

uv cannot download interpreters on this machine, so the seam where uv finds
or installs one (:class:`~nbseal.backends.interpreters.InterpreterProvider`)
is a stand-in; the resolution behind it is real uv against real PyPI.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbseal.backends.interpreters import set_interpreter_provider
from nbseal.backends.uv import UvBackend
from nbseal.directives import parse_cell
from nbseal.lock import Lock
from nbseal.plan import NotebookState, host_python_version
from nbseal.progress import Progress

CELL = "#seal pin 2018-06-01\n#seal env py <- numpy python=auto"
# A real CPython 3.6 where pyenv keeps one (uv's own discovery trips on pyenv's shims).
PYTHON36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python3.6"


class StandIn:
    """What ``uv python find``/``install`` would answer: one path, or none and why."""

    def __init__(self, path: str | None, why: str = "") -> None:
        self.path, self.why = path, why
        self.asked: list[str] = []

    async def find(self, request: str) -> tuple[str | None, str]:
        self.asked.append(request)
        return self.path, self.why


@pytest.fixture
def provider() -> Iterator[list[StandIn]]:
    chosen: list[StandIn] = []
    yield chosen
    set_interpreter_provider(None)


def resolve(tmp_path: Path, stand_in: StandIn, cell: str = CELL) -> tuple[Lock, NotebookState]:
    set_interpreter_provider(stand_in)
    state = NotebookState()
    for directive in parse_cell(cell).directives:
        state.apply(directive)
    spec = state.environments["py"].spec()
    assert spec.python_request == "auto"
    lock = asyncio.run(UvBackend().resolve(spec, tmp_path / "work", Progress("py")))
    return lock, state


def test_python_auto_without_the_pins_python_runs_on_this_one_and_says_so(
    tmp_path: Path, provider: list[StandIn]
) -> None:
    why = "No download found for request: cpython-3.6-linux-x86_64-gnu"
    stand_in = StandIn(None, why)
    lock, state = resolve(tmp_path, stand_in)
    assert stand_in.asked[0] == "3.6", "a 2018 pin asks for CPython 3.6"
    assert stand_in.asked[1:] == ["3.7", "3.8", "3.9", "3.10"][: len(stand_in.asked) - 1]
    assert lock.python == host_python_version()
    note = lock.fall_forwards[0]
    assert note.name == "python"
    assert note.pinned == "3.6"
    assert note.chosen == host_python_version()
    assert why in note.reason
    assert "cannot be had here" in note.reason
    assert lock.version_of("numpy") != "1.14.3", "numpy then falls forward as without auto"
    assert state.environments["py"].staleness(lock) is None


@pytest.mark.skipif(not PYTHON36.is_file(), reason="no CPython 3.6 on this machine")
def test_python_auto_with_the_pins_python_keeps_the_pins_versions(
    tmp_path: Path, provider: list[StandIn]
) -> None:
    stand_in = StandIn(str(PYTHON36))
    lock, state = resolve(tmp_path, stand_in)
    assert stand_in.asked == ["3.6"]
    assert lock.python.startswith("3.6.")
    numpy = lock.version_of("numpy")
    assert numpy is not None
    assert numpy.startswith("1.14."), "numpy of 2018 had wheels for CPython 3.6"
    assert all(f.name != "numpy" for f in lock.fall_forwards)
    assert "cp36" in lock.pylock, "a wheel for CPython 3.6, not an sdist"
    assert state.environments["py"].staleness(lock) is None, "auto fits the pin's Python"


@pytest.mark.skipif(not PYTHON36.is_file(), reason="no CPython 3.6 on this machine")
def test_the_kernel_is_taken_whole_with_a_dependency_that_fell_forward(
    tmp_path: Path, provider: list[StandIn]
) -> None:
    """tornado 4.5 (2017) has no wheel for 3.6 and falls forward to 6.1, which ipykernel
    4.6's pyzmq 16 cannot run with: the kernel and what it needs come as of tornado 6.1."""
    cell = "#seal pin 2017-12-03\n#seal env py <- six python=auto"
    lock, _ = resolve(tmp_path, StandIn(str(PYTHON36)), cell)
    assert lock.python.startswith("3.6.")
    assert lock.version_of("tornado") == "6.1"
    kernel = lock.version_of("ipykernel")
    assert kernel is not None
    assert int(kernel.split(".")[0]) >= 5, kernel
    notes = {f.name: f for f in lock.fall_forwards}
    assert notes["ipykernel"].pinned == "4.6.1"
    assert "the kernel: taken with tornado" in notes["ipykernel"].reason
    assert int((lock.version_of("pyzmq") or "0").split(".")[0]) >= 17


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="dates of CPython 3.11")
def test_python_auto_at_a_pin_of_this_python_asks_for_nothing(provider: list[StandIn]) -> None:
    from nbseal.backends.interpreters import choose_python

    stand_in = StandIn(None)
    set_interpreter_provider(stand_in)
    chosen = asyncio.run(choose_python("2023-06-01T00:00:00Z"))  # 3.11 was current then
    assert stand_in.asked == []
    assert chosen.python == sys.executable
    assert chosen.note is None


@pytest.mark.skipif(not PYTHON36.is_file(), reason="no CPython 3.6 on this machine")
def test_a_kernel_of_2018_on_cpython_36_runs_sealed_and_answers_through_the_proxy(
    tmp_path: Path,
) -> None:
    """The default provider finds pyenv's 3.6 (past its shims); the environment gets an
    ipykernel of its time (protocol 5.1, no interrupt_request), which the proxy relays:
    kernel_info, execute, and an interrupt sent as SIGINT."""
    import os

    from jupyter_client.manager import KernelManager

    from tests.kernel.helpers import collect, execute, start_busy_loop

    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(cwd=str(tmp_path), env={**os.environ, "JPY_SESSION_NAME": "old.ipynb"})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        code = "import sys, base64, ipykernel; print(sys.version_info[:2], ipykernel.__version__)"
        # The kernel as the notebook names it (a bare ipykernel would be taken with its
        # dependencies as of tornado 6.1, the first with a wheel for 3.6: ipykernel 5).
        cell = "#seal pin 2018-06-01\n#seal env py <- numpy ipykernel==4.8.2 python=auto"
        first = execute(kc, f"{cell}\n{code}", timeout=600)
        assert first.reply["content"]["status"] == "ok", first.reply["content"]
        version, kernel = first.stdout.strip().rsplit(" ", 1)
        assert version == "(3, 6)"
        assert kernel.startswith("4."), "ipykernel as it stood in 2018"
        assert execute(kc, "base64.encodestring(b'x')").reply["content"]["status"] == "ok"
        reply = kc.kernel_info(reply=True, timeout=30)
        assert reply["content"]["status"] == "ok"

        msg_id = start_busy_loop(kc)
        km.interrupt_kernel()
        stopped = collect(kc, msg_id, timeout=60).reply["content"]
        assert stopped["ename"] == "KeyboardInterrupt"
        assert execute(kc, "print(6 * 7)").stdout == "42\n", "the kernel lives on"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
