"""`nbseal run` killed at random moments leaves nothing behind.

Each round starts `nbseal run` on a notebook that builds an environment,
downloads data slowly and runs cells, then SIGKILLs it at a random moment:
its process group (nbseal run; the proxy has its own session), the proxy
alone, or both. Within seconds no process of the round may remain (proxy,
bwrap, kernel, uv) and the stores hold only complete entries; when one of
nbseal run and its proxy lived, no file holding a signing key and no runtime
folder whose owners are dead either (what nobody lived to remove, such as
the folder of a run killed before it started its proxy, the next start
removes: checked after the last round). Some rounds run
two notebooks on one store and kill one of them: the other must finish.

NBSEAL_TEST_KILLS sets the number of rounds (30 by default); the seed is
printed so a failing sequence can be replayed with NBSEAL_TEST_KILL_SEED.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from nbseal.runtime_dirs import OWNER_FILE, owned_by_live_process
from nbseal.uv import uv_cache_dir
from tests.dataserver import serve
from tests.e2e.test_cli import notebook
from tests.sandbox.helpers import processes_mentioning, wait_until

pytestmark = [pytest.mark.usefixtures("default_env"), pytest.mark.slow]

ROUNDS = int(os.environ.get("NBSEAL_TEST_KILLS", "30"))
DATA = bytes(range(256)) * 2560  # 640 KiB: ten chunks, 1 s from /slow/


def _notebook(path: Path, data_url: str) -> Path:
    digest = hashlib.sha256(DATA).hexdigest()
    nbformat.write(
        notebook(
            "#seal pin 2026-11-01\n#seal env py <- six\nimport six",
            f"#seal data d.bin <- {data_url} sha256:{digest}",
            "import time\ntime.sleep(0.3)\nprint(len(open('d.bin', 'rb').read()))",
        ),
        path,
    )
    return path


def _start(path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbseal", "run", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _proxies(run: subprocess.Popen[bytes], marker: Path) -> list[int]:
    """The proxy kernel started by ``run`` (its child, in a session of its own)."""
    found = []
    for pid in processes_mentioning(str(marker)):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == run.pid and b"nbseal.kernel" in cmdline:
            found.append(pid)
    return found


def _kill(proc: subprocess.Popen[bytes], mode: str, marker: Path) -> None:
    proxies = _proxies(proc, marker) if mode != "group" else []
    if mode in ("group", "both"):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in proxies:
        os.kill(pid, signal.SIGKILL)


def _key_files(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*.json") if root.exists() else []:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("key"):
                found.append(path)
    return found


def _runtime_dirs(tmp: Path) -> list[Path]:
    return [p for p in tmp.glob("nbseal-*") if (p / OWNER_FILE).exists()]


def _incomplete_entries(cache: Path) -> list[str]:
    """Store entries without their manifest, data files without their hash."""
    bad = []
    envs = cache / "envs"
    if envs.is_dir():
        bad += [p.name for p in envs.iterdir() if not (p / "nbseal-env.json").is_file()]
    data = cache / "data" / "sha256"
    if data.is_dir():
        for path in data.iterdir():
            if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
                bad.append(f"data {path.name}")
    return [name for name in bad if not name.startswith(".")]


def test_killed_at_random_moments_nothing_survives(tmp_path: Path) -> None:
    seed = int(os.environ.get("NBSEAL_TEST_KILL_SEED", str(random.randrange(2**32))))
    print(f"\nkill seed {seed}")
    # Short: ipc socket paths under TMPDIR are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="nbk-"))
    try:
        _rounds(tmp, tmp_path, random.Random(seed))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(tmp: Path, tmp_path: Path) -> list[int]:
    return processes_mentioning(str(tmp)) + processes_mentioning(str(tmp_path))


def _describe(pid: int) -> str:
    """``pid``, its parent and command line, for a failure message."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} (parent {parent}): {argv[:300]}"


def _rounds(tmp: Path, tmp_path: Path, rng: random.Random) -> None:
    jupyter_runtime = tmp_path / "jupyter-runtime"
    base_env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "JUPYTER_RUNTIME_DIR": str(jupyter_runtime),
    }
    survivors: list[str] = []
    with serve() as server:
        server.files["d.bin"] = DATA
        url = f"{server.url}slow/d.bin"
        # Control: an unkilled run, which also tells how long a round lasts.
        env = {**base_env, "NBSEAL_CACHE_DIR": str(tmp_path / "cache-control")}
        path = _notebook(tmp_path / "control.ipynb", url)
        started = time.monotonic()
        control = _start(path, env)
        _, err = control.communicate(timeout=300)
        span = time.monotonic() - started
        assert control.returncode == 0, err.decode()[-2000:]
        print(f"control run: {span:.1f} s")

        for round_ in range(ROUNDS):
            mode = rng.choice(["group", "proxy", "both"])
            # A fresh store in half the rounds, so that kills land in builds
            # and downloads too (uv's cache is shared: a build takes seconds).
            fresh = rng.random() < 0.5
            cache = tmp_path / (f"cache-{round_}" if fresh else "cache-shared")
            env = {**base_env, "NBSEAL_CACHE_DIR": str(cache)}
            path = _notebook(tmp_path / f"nb-{round_}.ipynb", url)
            pair = rng.random() < 0.2
            procs = [_start(path, env)]
            if pair:
                procs.append(_start(_notebook(tmp_path / f"nb-{round_}b.ipynb", url), env))
            delay = rng.uniform(0.0, span)
            time.sleep(delay)
            # A group kill before the proxy started leaves nobody to clean up:
            # the next start does (checked after the last round).
            survivor = mode == "proxy" or (mode == "group" and bool(_proxies(procs[0], tmp)))
            _kill(procs[0], mode, marker=tmp)
            procs[0].wait()
            what = f"round {round_} ({mode}, {'fresh' if fresh else 'warm'}, {delay:.2f} s)"
            if pair:
                _, err = procs[1].communicate(timeout=300)
                assert procs[1].returncode == 0, f"{what}: the other run failed: {err.decode()}"
            # Within seconds: no process of the round, no key on disk.
            gone = wait_until(lambda: not _alive(tmp, tmp_path), timeout=15)
            if not gone:
                left = sorted(set(_alive(tmp, tmp_path)))
                survivors.append(f"{what}: processes {[_describe(pid) for pid in left]}")
                for pid in left:
                    os.kill(pid, signal.SIGKILL)
            assert _incomplete_entries(cache) == [], what
            if survivor:
                # Someone lived to clean up: nothing of the round is left.
                assert wait_until(lambda: not _key_files(tmp, jupyter_runtime), timeout=10), (
                    f"{what}: key files {_key_files(tmp, jupyter_runtime)}"
                )
                assert wait_until(lambda: not _runtime_dirs(tmp), timeout=10), (
                    f"{what}: runtime folders {_runtime_dirs(tmp)}"
                )
        # Whatever two SIGKILLs at once left is removed by the next start.
        env = {**base_env, "NBSEAL_CACHE_DIR": str(tmp_path / "cache-shared")}
        last = _start(_notebook(tmp_path / "last.ipynb", url), env)
        _, err = last.communicate(timeout=300)
        assert last.returncode == 0, err.decode()[-2000:]
    assert survivors == []
    assert _key_files(tmp, jupyter_runtime) == []
    assert _runtime_dirs(tmp) == []
    # Builds cut short left no venv in uv's cache either.
    assert [p for p in uv_cache_dir().glob("nbseal-build-*") if not owned_by_live_process(p)] == []
