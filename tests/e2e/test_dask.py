"""`nbseal verify` on a real Dask cluster (issue 18): LocalClusters of 2 worker processes.

The notebooks are written with their stored outputs (what a run printed) and
the locks `nbseal lock` writes, so nothing here runs a notebook twice to
prepare it: one notebook differs, one raises, one hangs past its time limit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import junitparser
import nbformat
import pytest
from distributed import Client, LocalCluster

from nbseal.distributed import verify_corpus
from nbseal.locking import lock_notebook
from nbseal.verify import VerifyOptions
from tests.e2e.test_cli import nbseal

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_env")]

TIMEOUT = "25"  # --timeout-notebook: the hanging notebook is cut after it
SIX = "#seal pin 2025-06-01\n#seal env py <- six==1.16.0\nimport six\nprint(six.__version__)"


def _stream(text: str) -> list[Any]:
    return [nbformat.v4.new_output("stream", name="stdout", text=text)]


def _result(value: str, count: int) -> list[Any]:
    return [
        nbformat.v4.new_output("execute_result", data={"text/plain": value}, execution_count=count)
    ]


# name -> cells of (source, stored outputs), and the verdict verify must give.
CORPUS: dict[str, tuple[list[tuple[str, list[Any]]], str]] = {
    "arith": ([("print(2 + 2)", _stream("4\n")), ("6 * 7", _result("42", 2))], "reproduced"),
    "join": ([("print('-'.join('abc'))", _stream("a-b-c\n"))], "reproduced"),
    "squares": ([("print(sum(i * i for i in range(10)))", _stream("285\n"))], "reproduced"),
    "six": ([(SIX, _stream("1.16.0\n"))], "reproduced"),
    "skip": (
        [
            ("# NBVAL_SKIP\nimport random\nprint(random.random())", _stream("0.5\n")),
            ("print('kept')", _stream("kept\n")),
        ],
        "reproduced",
    ),
    "differs": ([("print('forty-two')", _stream("forty-three\n"))], "differs"),
    "raises": ([("print(1)", _stream("1\n")), ("{}['missing']", _stream("found\n"))], "error"),
    "hangs": (
        [
            ("print(1)", _stream("1\n")),
            ("import time\ntime.sleep(600)", _stream("done\n")),
            ("print(3)", _stream("3\n")),
        ],
        "error",
    ),
}


def _write(folder: Path, name: str, cells: list[tuple[str, list[Any]]], metadata: Any) -> Path:
    nb = nbformat.v4.new_notebook(metadata=metadata)
    for count, (source, outputs) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = outputs
        nb.cells.append(cell)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _locked_metadata(folder: Path, source: str) -> Any:
    """The metadata `nbseal lock` writes for a notebook made of ``source``."""
    path = folder / ".template.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, path)
    lock_notebook(path)
    metadata = nbformat.read(path, as_version=4).metadata
    path.unlink()
    return metadata


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    plain = _locked_metadata(folder, "print(1)")
    pinned = _locked_metadata(folder, SIX)
    return {
        name: _write(folder, name, cells, pinned if name == "six" else plain)
        for name, (cells, _) in CORPUS.items()
    }


def _start_verify(*args: str, group: bool = False) -> subprocess.Popen[str]:
    """`nbseal verify ARGS` started, its output piped; ``group``: in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "nbseal", "verify", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,  # as a terminal's foreground job
    )


def _local_cluster(**kwargs: Any) -> LocalCluster:
    """Two worker processes of one thread each, as `--cluster local:2` starts."""
    return LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", **kwargs
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with _local_cluster() as local:
        yield local


def _results(stdout: str) -> dict[str, dict[str, Any]]:
    """`verify --json`'s objects by notebook name, each present exactly once."""
    results = json.loads(stdout)
    names = [Path(r["notebook"]).stem for r in results]
    assert sorted(names) == sorted(set(names)), f"a notebook reported twice: {names}"
    return {Path(r["notebook"]).stem: r for r in results}


def _verdict(result: dict[str, Any]) -> str:
    statuses = {cell["status"] for cell in result["cells"]}
    if result["problem"] or "error" in statuses:
        return "error"
    return "reproduced" if result["ok"] else "differs"


def _essentials(result: dict[str, Any]) -> dict[str, Any]:
    """What must agree between two runs (not the seconds, nor a diff's wording)."""
    return {
        "ok": result["ok"],
        "counts": result["counts"],
        "cells": [(cell["cell"], cell["status"]) for cell in result["cells"]],
        "problem": (result["problem"] or "").splitlines()[:1],
    }


@pytest.fixture(scope="module")
def both_runs(
    corpus: dict[str, Path], cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The corpus verified here (`-j 2`) and on the cluster (`--scheduler`), with a JUnit file."""
    paths = [str(path) for path in corpus.values()]
    local = nbseal("verify", "--json", "-j", "2", "--timeout-notebook", TIMEOUT, *paths)
    junit = tmp_path_factory.mktemp("reports") / "verify.xml"
    address = cluster.scheduler_address
    common = ("--json", "--timeout-notebook", TIMEOUT, "--junit", str(junit))
    remote = nbseal("verify", "--scheduler", address, *common, *paths)
    return {"local": local, "remote": remote, "junit": junit}


def test_the_cluster_gives_the_results_of_a_local_run(both_runs: dict[str, Any]) -> None:
    local, remote = both_runs["local"], both_runs["remote"]
    assert local.returncode == 2, local.stderr  # one notebook could not finish: timed out
    assert remote.returncode == 2, remote.stderr
    here, there = _results(local.stdout), _results(remote.stdout)
    assert sorted(there) == sorted(CORPUS)
    assert {name: _verdict(r) for name, r in there.items()} == {
        name: verdict for name, (_, verdict) in CORPUS.items()
    }
    for name in CORPUS:
        assert _essentials(there[name]) == _essentials(here[name]), name
    assert "timed out after 25 s" in there["hangs"]["problem"]
    assert "cut in cell 2" in there["hangs"]["problem"]
    assert [c["status"] for c in there["hangs"]["cells"]] == ["reproduced"]
    # One progress line per notebook, counting as results came in.
    lines = [line for line in remote.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [f"[{n}/8" for n in range(1, 9)]
    assert lines[-1].startswith("[8/8] 5 reproduced, 1 differs, 2 error |")


def test_a_local_run_with_a_time_limit_shows_each_notebook_s_builds(
    both_runs: dict[str, Any],
) -> None:
    """`-j 2 --timeout-notebook` shows build progress as `-j 2` alone does, named per notebook."""
    stderr = both_runs["local"].stderr
    steps = [line.strip() for line in stderr.splitlines() if line.startswith("    six.ipynb: ")]
    assert steps, stderr
    done = ("reused from the store", "built and stored")  # the build's last step, either way
    assert any(word in steps[-1] for word in done), steps


def test_the_junit_xml_reads_with_a_junit_parser(both_runs: dict[str, Any]) -> None:
    xml = junitparser.JUnitXml.fromfile(str(both_runs["junit"]))
    (suite,) = list(xml)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (8, 1, 2, 0)
    outcomes: dict[str, list[Any]] = {Path(case.name).stem: case.result for case in suite}
    assert sorted(outcomes) == sorted(CORPUS)
    (failure,) = outcomes["differs"]
    assert isinstance(failure, junitparser.Failure)
    assert "+forty-two" in (failure.text or "")
    (raised,) = outcomes["raises"]
    assert isinstance(raised, junitparser.Error)
    assert "KeyError" in (raised.text or "")
    (cut,) = outcomes["hangs"]
    assert isinstance(cut, junitparser.Error)
    assert cut.type == "NotebookTimeoutError"
    for name in ("arith", "join", "squares", "six", "skip"):
        assert outcomes[name] == [], name


def _worker_pids(client: Client) -> dict[str, int]:
    return dict(client.run(os.getpid))


def _kernel_of(worker: int, notebook: Path) -> int | None:
    """The pid of ``notebook``'s kernel if the worker process ``worker`` runs it now."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        if parent == worker and f"JPY_SESSION_NAME={notebook}".encode() in environ:
            return int(entry.name)
    return None


def _gone(pid: int, within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                return True  # exited, waiting for its parent (the dead worker) to reap it
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.5)
    return False


def test_a_worker_killed_mid_notebook_still_gives_each_result_once(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    quick = {name: path for name, path in corpus.items() if name != "hangs"}
    slow = _write(
        tmp_path,
        "slow",
        [("import time\ntime.sleep(8)\nprint('slept')", _stream("slept\n"))],
        nbformat.read(quick["arith"], as_version=4).metadata,
    )
    paths = [slow, *quick.values()]
    with _local_cluster() as local, Client(local) as client:
        workers = _worker_pids(client)
        proc = _start_verify("--json", "--scheduler", local.scheduler_address, *map(str, paths))
        try:
            victim = kernel = None
            deadline = time.monotonic() + 120
            while kernel is None and time.monotonic() < deadline:
                for pid in workers.values():
                    kernel = _kernel_of(pid, slow)
                    if kernel is not None:
                        victim = pid
                        break
                time.sleep(0.2)
            assert victim is not None, "the slow notebook never started"
            assert kernel is not None
            os.kill(victim, signal.SIGKILL)  # mid-notebook: its kernel is running
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 1, stderr  # one notebook differs, one raises
        results = _results(stdout)
        assert sorted(results) == sorted(["slow", *quick])
        assert _verdict(results["slow"]) == "reproduced"
        for name in quick:
            assert _verdict(results[name]) == CORPUS[name][1], name
        lines = [line for line in stderr.splitlines() if line.startswith("[")]
        assert len(lines) == 8, stderr
        assert _gone(kernel), "the killed worker's kernel outlived it"


def test_two_workers_needing_one_new_environment_build_it_once(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    store = tmp_path / "fresh-store"  # both workers share it; it holds nothing yet
    twins = [corpus["six"], tmp_path / "six-twin.ipynb"]
    twins[1].write_bytes(corpus["six"].read_bytes())
    env = {"NBSEAL_CACHE_DIR": str(store)}  # uv's cache stays the session's (UV_CACHE_DIR)
    with _local_cluster(env=env) as local:
        with Client(local) as client:  # both workers warm before the two tasks go out
            client.run(lambda: __import__("nbseal.distributed"))
        run = verify_corpus(twins, VerifyOptions(), scheduler=local.scheduler_address)
    assert [report.ok for report in run.reports] == [True, True]
    payloads = [payload for payload in run.payloads if payload is not None]
    assert len({payload["worker"] for payload in payloads}) == 2, "one notebook per worker"
    builders = [
        p for p in payloads if any("creating virtual environment" in t for t in p["progress"])
    ]
    assert len(builders) == 1, [p["progress"] for p in payloads]
    entries = [p.name for p in (store / "envs").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries
    assert list((store / "envs").glob(".build-*")) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return f"{pid} (gone)"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rfind(")") + 2 :].split()[1]), []).append(
                int(entry.name)
            )
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_ctrl_c_cancels_the_rest_and_writes_the_partial_report(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    hangs_too = tmp_path / "hangs-too.ipynb"
    hangs_too.write_bytes(corpus["hangs"].read_bytes())
    junit = tmp_path / "partial.xml"
    paths = [corpus["arith"], corpus["hangs"], hangs_too]  # submitted in this order
    args = ("--json", "--cluster", "local:2", "--junit", str(junit), *map(str, paths))
    proc = _start_verify(*args, group=True)
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("[1/3]"):
                break
        assert seen, "nbseal verify ended before any result"
        assert "arith.ipynb: reproduced" in seen[-1], "".join(seen)
        started = time.monotonic()
        hanging = {corpus["hangs"].resolve(), hangs_too.resolve()}
        while not hanging <= notebooks_running(proc.pid) and time.monotonic() - started < 60:
            time.sleep(0.2)  # both hanging notebooks' kernels running on the workers
        assert hanging <= notebooks_running(proc.pid), "the hanging notebooks never both ran"
        before = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the client and its workers get it
        stdout, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest
    results = _results(stdout)
    assert results["arith"]["ok"] is True
    for name in ("hangs", "hangs-too"):
        assert "was not verified: the run was interrupted" in results[name]["problem"]
    assert "interrupted; 1 of 3 verified" in rest
    assert "Traceback" not in rest, rest  # the workers leave Ctrl-C to the client
    (suite,) = list(junitparser.JUnitXml.fromfile(str(junit)))
    assert (suite.tests, suite.skipped) == (3, 2)
    left = [pid for pid in before if not _gone(pid)]
    assert left == [], [_cmdline(pid) for pid in left]  # outlived the interrupted run


def notebooks_running(pid: int) -> set[Path]:
    """The notebooks whose kernels run below ``pid`` (the CLI's workers), by JPY_SESSION_NAME."""
    found = set()
    for child in _descendants(pid):
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes()
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"nbseal.kernel" not in cmdline:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(b"JPY_SESSION_NAME="):
                found.add(Path(item.partition(b"=")[2].decode()).resolve())
    return found


def test_without_dask_the_error_says_what_to_install(corpus: dict[str, Path]) -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from nbseal.cli import main\n"
        f"raise SystemExit(main(['verify', '--cluster', 'local:2', {str(corpus['arith'])!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 2
    assert "pip install 'nbseal[dask]'" in proc.stderr
    bad = nbseal("verify", "--cluster", "remote:3", str(corpus["arith"]))
    assert bad.returncode == 2
    assert "--cluster 'remote:3' is not a cluster nbseal can start" in bad.stderr
    assert "local:N" in bad.stderr
