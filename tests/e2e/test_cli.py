"""End to end: the nbseal command, nbclient and papermill with the nbseal kernel."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from nbseal.runner import start_kernel

pytestmark = pytest.mark.usefixtures("default_env")

ROOT = Path(__file__).resolve().parents[2]


def nbseal(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbseal", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_run_the_quickstart_example(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    proc = nbseal("run", str(ROOT / "examples" / "quickstart.ipynb"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "3 cells ran" in proc.stderr
    executed = nbformat.read(out, as_version=4)
    result = executed.cells[3].outputs[0]
    assert result["data"]["text/plain"] == "285"
    assert executed.cells[3].execution_count == 3
    assert executed.metadata.kernelspec.name == "nbseal"


def test_run_verbose_prints_one_timeline_of_both_processes(tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = nbseal(
        *("run", "-v", str(ROOT / "examples" / "quickstart.ipynb"), "-o", str(out)),
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert proc.returncode == 0, proc.stderr
    head = "nbseal run: timeline (seconds since the first event, step since the one before)"
    assert head in proc.stderr
    lines = proc.stderr.split(head, 1)[1].strip().splitlines()
    parsed = [re.fullmatch(r"\s*([\d.]+) s\s+\+\s*[\d.]+ ms\s+(.*)", line) for line in lines]
    assert all(parsed), lines
    times = [float(match[1]) for match in parsed if match]
    events = [match[2] for match in parsed if match]
    assert times == sorted(times)
    assert times[0] == 0.0
    # Each process's steps in order; the command starts the kernel before it
    # imports jupyter_client, so the two processes' imports overlap.
    command = [
        "nbseal run  process started",
        "nbseal run  runner imported",
        "nbseal run  starting the nbseal kernel",
        "nbseal run  jupyter_client imported",
        "nbseal run  cell 4: ok",
        "nbseal run  the nbseal kernel stopped",
        "nbseal run  outputs written to out.ipynb",
    ]
    proxy = [
        "nbseal run  starting the nbseal kernel",
        "proxy       notebook read: locks for default",
        "proxy       environment default: launching python3",
        "proxy       environment default: kernel ready",
        "nbseal run  cell 4: ok",
    ]
    for steps in (command, proxy):
        found = [next(i for i, e in enumerate(events) if e.startswith(step)) for step in steps]
        assert found == sorted(found), events
    assert not list(temp.glob("nbseal-timeline-*")), "the timeline's file is removed"


def test_the_kernel_starts_before_jupyter_client_is_imported(tmp_path: Path) -> None:
    """nbseal run starts its kernel first; jupyter_client then takes the running process over.

    In a fresh interpreter, as the command runs: the kernel process exists
    before anything imports jupyter_client, and the run through that
    process (nbclient, shutdown) writes the cell's result back.
    """
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("6 * 7"), path)
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from nbseal.runner import run_notebook, start_kernel\n"
        f"path = Path({str(path)!r})\n"
        "kernel = start_kernel(path)\n"
        "print('jupyter_client' in sys.modules, kernel.process.poll())\n"
        "result = run_notebook(path, kernel=kernel)\n"
        "print(result.cells_run, kernel.process.poll())\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["False None", "1 0"], ran.stderr
    executed = nbformat.read(path, as_version=4)
    assert executed.cells[0].outputs[0]["data"]["text/plain"] == "42"


def test_run_names_the_failing_cell_and_keeps_outputs(tmp_path: Path) -> None:
    path = tmp_path / "bad.ipynb"
    nbformat.write(notebook("print('one')", "1/0", "print('never')"), path)
    proc = nbseal("run", str(path))
    assert proc.returncode == 1
    # The kernel was shut down by the run, not left to notice its parent's
    # exit (it would print after the run's last line, on the same stderr).
    assert "parent process" not in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].endswith(f"outputs so far written to {path}")
    assert "FAILED at cell 2" in proc.stderr
    assert "ZeroDivisionError" in proc.stderr
    written = nbformat.read(path, as_version=4)
    assert written.cells[0].outputs[0]["text"] == "one\n"
    assert written.cells[2].outputs == []


def test_run_stores_a_progress_bar_as_a_frontend_does(tmp_path: Path) -> None:
    # Each flushed "\r" update is a stream message of its own; JupyterLab
    # stores the pieces as one output, the bar's last state. A display updated
    # from a later cell is still the one updated after the pieces merged.
    path = tmp_path / "bar.ipynb"
    bar = (
        "import sys, time\nfrom IPython.display import display\n"
        "for step in range(1, 6):\n"
        "    sys.stdout.write(f'\\rstep {step}/5'); sys.stdout.flush(); time.sleep(0.05)\n"
        "print()\nhandle = display('first', display_id=True)\nprint('after')"
    )
    nbformat.write(notebook(bar, "handle.update('second')"), path)
    proc = nbseal("run", str(path))
    assert proc.returncode == 0, proc.stderr
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o["output_type"] for o in outputs] == ["stream", "display_data", "stream"]
    assert outputs[0]["text"] == "step 5/5\n"
    assert outputs[1]["data"]["text/plain"] == "'second'"
    assert outputs[2]["text"] == "after\n"


def test_run_allow_errors_runs_every_cell_and_records_the_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.ipynb"
    nbformat.write(notebook("print('one')", "1/0", "print('after')", "int('x')"), path)
    proc = nbseal("run", "--allow-errors", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "cell 2 raised ZeroDivisionError: division by zero" in proc.stderr
    assert "cell 4 raised ValueError" in proc.stderr
    assert "4 cells ran" in proc.stderr
    assert ", 2 raised;" in proc.stderr
    written = nbformat.read(path, as_version=4)
    assert written.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert written.cells[2].outputs[0]["text"] == "after\n", "the cell after the error ran"


def test_run_reports_a_missing_or_broken_notebook(tmp_path: Path) -> None:
    missing = nbseal("run", str(tmp_path / "nope.ipynb"))
    assert missing.returncode == 2
    assert "no notebook at" in missing.stderr
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    # The kernel starts before the notebook is read: once the reading fails,
    # neither its process nor the run's folder (the signing key) may remain.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    proc = nbseal("run", str(broken), env={**os.environ, "TMPDIR": str(runtime)})
    assert proc.returncode == 2
    assert "not valid JSON" in proc.stderr
    assert broken.read_text() == "{not json"
    assert list(runtime.iterdir()) == []
    assert _processes_of(broken) == []


def test_a_kernel_started_for_a_run_that_never_ran_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("1 + 1"), path)
    kernel = start_kernel(path)
    proxy = kernel.process
    run_dir = kernel.run_dir
    assert (run_dir / "kernel.json").exists()
    with pytest.raises(RuntimeError), kernel:
        raise RuntimeError("the notebook could not be read")
    assert proxy.poll() is not None, "the nbseal kernel outlived its run"
    assert not run_dir.exists(), "the run's folder (it held the signing key) is left"


def test_a_run_s_kernel_is_reachable_only_through_its_private_folder(tmp_path: Path) -> None:
    """No TCP port another local user could knock on: ipc sockets in a folder only we can enter."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("1 + 1"), path)
    with start_kernel(path) as kernel:
        info = json.loads(kernel.connection_file.read_text())
        assert info["transport"] == "ipc"
        assert Path(info["ip"]).parent == kernel.run_dir
        assert kernel.run_dir.stat().st_mode & 0o777 == 0o700
        assert kernel.connection_file.stat().st_mode & 0o777 == 0o600


def test_the_kernel_removes_its_run_s_folder_when_it_stops(tmp_path: Path) -> None:
    """A run killed between its kernel's exit and its own removal of the folder would
    leave it (and nobody alive to sweep it): the kernel removes it as it stops."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("1 + 1"), path)
    with start_kernel(path) as kernel:
        client = kernel.km.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            client.shutdown()
            kernel.process.wait(timeout=60)
        finally:
            client.stop_channels()
        assert not kernel.run_dir.exists(), "left for this run to remove after the kernel's exit"


def test_a_restarted_run_kernel_keeps_its_run_s_folder(tmp_path: Path) -> None:
    """A restart (shutdown_request with restart) starts the next kernel with the same
    connection file: the stopping kernel must leave the folder that holds it."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("1 + 1"), path)
    with start_kernel(path) as kernel:
        old = kernel.km.provisioner.pid if kernel.km.provisioner is not None else None
        run_sync(kernel.km.restart_kernel)(now=False)
        assert kernel.km.provisioner is not None
        assert kernel.km.provisioner.pid != old, "a new nbseal kernel"
        assert kernel.connection_file.exists()
        client = kernel.km.blocking_client()
        client.start_channels()
        try:
            reply = client.execute_interactive("1 + 1", timeout=120)
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok"
        run_sync(kernel.km.shutdown_kernel)(now=True)


def _processes_of(notebook: Path) -> list[int]:
    """The pids whose environment names ``notebook`` as their Jupyter session."""
    wanted = f"JPY_SESSION_NAME={notebook.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in variables:
            found.append(int(entry.name))
    return found


def test_kernel_install_and_remove(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    proc = nbseal("kernel", "install", "--prefix", str(prefix))
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/nbseal/kernel.json").read_text())
    assert spec["display_name"] == "nbseal (reproducible)"
    assert spec["interrupt_mode"] == "message"
    kernels = prefix / "share/jupyter/kernels"
    assert "nbseal" in KernelSpecManager(kernel_dirs=[str(kernels)]).find_kernel_specs()
    env = dict(os.environ, JUPYTER_PATH=str(prefix / "share/jupyter"))
    removed = nbseal("kernel", "remove", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not (kernels / "nbseal").exists()


def test_nbclient_executes_through_the_installed_kernel() -> None:
    nb = notebook("x = 6 * 7", "print(x)")
    NotebookClient(nb, kernel_name="nbseal", timeout=120).execute()
    assert nb.cells[1].outputs[0]["text"] == "42\n"


def test_papermill_executes_with_parameters(tmp_path: Path) -> None:
    import papermill

    nb = notebook("n = 1", "print(n * 2)")
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "nbseal", "display_name": "nbseal", "language": "python"}
    src = tmp_path / "in.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(src), str(out), parameters={"n": 21}, kernel_name="nbseal", progress_bar=False
    )
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "42\n"


def test_one_setting_holds_the_store_and_uv_s_cache(tmp_path: Path) -> None:
    """NBSEAL_CACHE_DIR alone: uv's downloads and builds go there too, not to the home."""
    env = {k: v for k, v in os.environ.items() if k != "UV_CACHE_DIR"}
    env["NBSEAL_CACHE_DIR"] = str(tmp_path / "cache")
    listed = nbseal("env", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    uv_line = next(line for line in listed.stdout.splitlines() if line.startswith("uv's cache"))
    uv_cache = Path(uv_line.split(": ", 1)[1])
    assert uv_cache.parent == tmp_path / "cache"
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("#seal pin 2024-01-01\n#seal env py <- six\nimport six"), path)
    proc = nbseal("lock", str(path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert any(uv_cache.iterdir()), "uv's cache is in NBSEAL_CACHE_DIR"
