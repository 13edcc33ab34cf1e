"""Warm kernels (issue 17): a notebook's stored environments start before a cell asks.

A notebook with three environments is locked and run once (its entries are
then in the store); opened again in a real kernel, all three kernels start
in the background, `#seal describe` says they are warm, a switch uses the
warm kernel, a redefinition stops it, the budget and the idle timeout hold,
and no kernel outlives the notebook.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from nbseal.store import EnvironmentStore
from tests.e2e.test_cli import nbseal
from tests.e2e.test_locks import PIN, write
from tests.kernel.helpers import Result, collect, execute, pid_alive, start_busy_loop

DESCRIBE_MIME = "application/vnd.nbseal.describe+json"
ENVIRONMENTS = {"a": "six==1.16.0", "b": "six==1.17.0", "c": "six==1.15.0"}
CELLS = [
    f"#seal pin {PIN}\n#seal env {name} <- {spec}\nimport six; print(six.__version__)"
    for name, spec in ENVIRONMENTS.items()
]


@pytest.fixture(scope="module")
def stored_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three environments, locked in the notebook and built in the store."""
    folder = tmp_path_factory.mktemp("warm")
    path = write(folder / "three.ipynb", *CELLS)
    assert nbseal("lock", str(path)).returncode == 0
    run = nbseal("run", str(path), "-o", str(folder / "out.ipynb"))
    assert run.returncode == 0, run.stderr
    return path


@dataclass
class Opened:
    """A notebook open in a real nbseal kernel."""

    km: KernelManager
    kc: BlockingKernelClient

    def rows(self) -> dict[str, dict[str, str]]:
        shown = execute(self.kc, "#seal describe").of_type("display_data")[0]["content"]["data"]
        return {row["environment"].split()[0]: row for row in shown[DESCRIBE_MIME]}

    def states_when(
        self, done: Callable[[dict[str, str]], bool], timeout: float = 120
    ) -> dict[str, str]:
        """The environments' states, polled until ``done(states)`` or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            states = {name: row["state"] for name, row in self.rows().items()}
            if done(states) or time.monotonic() > deadline:
                return states
            time.sleep(0.5)

    def processes(self, name: str) -> list[int]:
        """The processes of this notebook's proxy (sandboxes, kernels) running ``name``'s entry.

        Other kernels on the machine may run the same entry (keys are content
        addresses): only the proxy's descendants count.
        """
        proxy = self.km.provisioner.process.pid  # type: ignore[union-attr]
        entry = str(EnvironmentStore().root / self.rows()[name]["store key"]).encode()
        found = []
        for path in Path("/proc").iterdir():
            try:
                if not path.name.isdigit() or entry not in (path / "cmdline").read_bytes():
                    continue
            except OSError:
                continue
            pid = ancestor = int(path.name)
            while ancestor > 1 and ancestor != proxy:
                ancestor = _parent(ancestor)
            if ancestor == proxy:
                found.append(pid)
        return found


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _open(path: Path, **env: str) -> Opened:
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(cwd=str(path.parent), env={**os.environ, "JPY_SESSION_NAME": path.name, **env})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return Opened(km, kc)


def _close(notebook: Opened) -> None:
    notebook.kc.stop_channels()
    notebook.km.shutdown_kernel(now=True)


@pytest.fixture
def opened(stored_notebook: Path, request: pytest.FixtureRequest) -> Iterator[Opened]:
    notebook = _open(stored_notebook, **getattr(request, "param", {}))
    try:
        yield notebook
    finally:
        _close(notebook)


def _gone(pids: list[int], timeout: float = 15) -> bool:
    """Whether every process of ``pids`` has ended within ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _all_warm(states: dict[str, str]) -> bool:
    return all(states.get(name, "").startswith("warm") for name in ENVIRONMENTS)


def _last_line(result: Result) -> str:
    lines = result.stdout.strip().splitlines()
    assert lines, result.reply["content"]
    return lines[-1]


def test_stored_environments_are_warm_before_their_cells_run(opened: Opened) -> None:
    states = opened.states_when(_all_warm)
    assert _all_warm(states), states
    for name in ENVIRONMENTS:  # "warm, 52 MB": each warm kernel's memory is reported
        assert states[name].endswith(" MB"), states
        assert float(states[name].split()[1]) > 5, states
    warm = opened.processes("b")
    assert warm, "b's warm kernel runs"

    # The switch: b's cell runs in the warm kernel, nothing is started for it.
    assert _last_line(execute(opened.kc, CELLS[1])) == "1.17.0"
    assert opened.processes("b") == warm
    assert opened.rows()["b"]["state"].startswith("running")


def test_a_redefined_environment_stops_its_warm_kernel(opened: Opened) -> None:
    assert _all_warm(opened.states_when(_all_warm))
    warm = opened.processes("c")
    assert warm
    redefined = f"#seal pin {PIN}\n#seal env c <- six==1.16.0\nimport six; print(six.__version__)"
    assert _last_line(execute(opened.kc, redefined)) == "1.16.0"
    assert _gone(warm), "the warm kernel of c's old definition is stopped"


@pytest.mark.parametrize("opened", [{"NBSEAL_WARM_MB": "0"}], indirect=True)
def test_a_budget_of_nothing_warms_only_the_first_environment(opened: Opened) -> None:
    opened.states_when(lambda s: s.get("a", "").startswith("warm"))
    time.sleep(2)  # b and c would have started by now
    states = {name: row["state"] for name, row in opened.rows().items()}
    assert states["a"].startswith("warm"), states
    # Not declared by a cell yet, and not warmed: not listed.
    assert "b" not in states, states
    assert "c" not in states, states


@pytest.mark.parametrize("opened", [{"NBSEAL_WARM_IDLE": "3"}], indirect=True)
def test_an_unused_warm_kernel_is_stopped_after_the_idle_timeout(opened: Opened) -> None:
    # Each kernel warms in turn and is stopped 3 s after it started: under
    # load the first may be gone before the last is warm, so each is caught
    # warm on its own, with its processes.
    seen: set[str] = set()
    warm: list[int] = []
    deadline = time.monotonic() + 120
    while seen != set(ENVIRONMENTS) and time.monotonic() < deadline:
        for name, row in opened.rows().items():
            if name in ENVIRONMENTS and row["state"].startswith("warm") and name not in seen:
                seen.add(name)
                warm += opened.processes(name)
        time.sleep(0.2)
    assert seen == set(ENVIRONMENTS), f"never seen warm: {set(ENVIRONMENTS) - seen}"
    assert warm
    states = opened.states_when(lambda s: all(s[n] == "not started" for n in ENVIRONMENTS), 30)
    assert all(states[name] == "not started" for name in ENVIRONMENTS), states
    assert _gone(warm)
    # Used later, the environment starts again, as if it had never been warm.
    assert _last_line(execute(opened.kc, CELLS[2], timeout=120)) == "1.15.0"


def test_no_kernel_outlives_the_notebook(stored_notebook: Path) -> None:
    notebook = _open(stored_notebook)
    try:
        assert _all_warm(notebook.states_when(_all_warm))
        warm = [pid for name in ENVIRONMENTS for pid in notebook.processes(name)]
        assert len(warm) >= len(ENVIRONMENTS)
    finally:
        notebook.kc.stop_channels()
        notebook.km.shutdown_kernel(now=False)
    assert _gone(warm)


def test_stdin_interrupt_and_restart_work_on_a_warm_kernel(stored_notebook: Path) -> None:
    notebook = _open(stored_notebook)
    km, kc = notebook.km, notebook.kc
    try:
        assert _all_warm(notebook.states_when(_all_warm))
        execute(kc, CELLS[1])  # switch to b's warm kernel
        msg_id = kc.execute("name = input('name? '); print(name)", allow_stdin=True)
        request = kc.get_stdin_msg(timeout=30)
        assert request["content"]["prompt"] == "name? "
        kc.input("ada")
        assert collect(kc, msg_id).stdout == "ada\n"

        msg_id = start_busy_loop(kc)
        km.interrupt_kernel()
        assert collect(kc, msg_id, timeout=30).reply["content"]["ename"] == "KeyboardInterrupt"

        # A restart is fresh: a new proxy, whose kernels warm up again.
        before = notebook.processes("b")
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=120)
        assert _gone(before)
        assert _all_warm(notebook.states_when(_all_warm))
        assert notebook.processes("b")
        assert _last_line(execute(kc, CELLS[1] + "\nprint('name' in dir())")) == "False"
    finally:
        _close(notebook)
