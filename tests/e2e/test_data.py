"""`#seal data` end to end, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nbseal.datastore import DataStore
from tests.dataserver import big_sha256, serve
from tests.e2e.test_cli import nbseal, notebook
from tests.e2e.test_sandbox_cli import PROBE as SANDBOX_PROBE
from tests.kernel.helpers import collect, execute, running_kernel

pytestmark = pytest.mark.usefixtures("default_env")

PROBE = (
    SANDBOX_PROBE
    + """
import hashlib, os
def sha(name):
    return hashlib.sha256(open(name, 'rb').read()).hexdigest()
"""
)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def run(tmp_path: Path, *sources: str) -> tuple[list[str], str]:
    """Run through `nbseal run`; each cell's outputs as text (tracebacks included)."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(*sources), path)
    proc = nbseal("run", str(path))
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        parts = []
        for out in cell.outputs:
            if out["output_type"] == "stream":
                parts.append(out["text"])
            elif out["output_type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}\n" + "\n".join(out["traceback"]))
            else:
                parts.append(str(out.get("data", {}).get("text/plain", "")))
        texts.append("\n".join(parts))
    return texts, proc.stderr


def leftovers() -> list[str]:
    root = DataStore().root
    return sorted(p.name for p in root.glob(".partial-*")) if root.is_dir() else []


def test_data_is_fetched_once_verified_read_only_and_used_offline(tmp_path: Path) -> None:
    content = os.urandom(200_000)
    digest = sha256(content)
    with serve() as server:
        url = server.add("d.bin", content)
        cell = (
            f"#seal data d.bin <- {url} sha256:{digest}\n{PROBE}\n"
            "print('sha', sha('d.bin'))\n"
            "print('append', probe(lambda: open('d.bin', 'ab')))\n"
            "print('chmod', probe(lambda: os.chmod('d.bin', 0o666)))\n"
            "print('remove', probe(lambda: os.remove('d.bin')))"
        )
        (out,), _ = run(tmp_path, cell)
        assert server.hits["/f/d.bin"] == 1
    assert f"sha {digest}" in out
    assert "fetched, verified and stored" in out
    # A read-only file on a read-only mount: no write, no chmod. The name in
    # the working directory is a link the cell may remove (its own view);
    # the stored file stays whole.
    assert "append PermissionError 13" in out or "append OSError 30" in out
    assert "chmod OSError 30" in out, "EROFS: the data is mounted read-only"
    assert "remove ok" in out
    stored = DataStore().lookup(digest)
    assert stored is not None
    assert stored.read_bytes() == content
    # The server is gone: the store serves it, without the network.
    (again,), _ = run(tmp_path, cell)
    assert f"sha {digest}" in again
    assert "from the store" in again


def test_a_wrong_hash_stores_nothing_and_names_both_hashes(tmp_path: Path) -> None:
    content = os.urandom(50_000)
    with serve() as server:
        url = server.add("w.bin", content)
        wrong = "0" * 64
        (out,), stderr = run(tmp_path, f"#seal data w.bin <- {url} sha256:{wrong}\nprint('ran')")
    assert "DataHashError" in out
    assert f"expected sha256:{wrong}" in out
    assert f"actual   sha256:{sha256(content)}" in out
    assert url in out
    assert "ran" not in out.split("DataHashError")[0]
    assert DataStore().lookup(sha256(content)) is None
    assert DataStore().lookup(wrong) is None
    assert leftovers() == []
    assert "FAILED at cell 1" in stderr


def test_a_cut_transfer_stores_nothing_and_a_retry_starts_clean(tmp_path: Path) -> None:
    content = os.urandom(300_000)
    digest = sha256(content)
    with serve() as server:
        server.add("c.bin", content)
        cut, _ = run(tmp_path, f"#seal data c.bin <- {server.url}cut/c.bin sha256:{digest}")
        assert "DataFetchError" in cut[0]
        assert DataStore().lookup(digest) is None
        assert leftovers() == []
        ok, _ = run(
            tmp_path,
            f"#seal data c.bin <- {server.url}f/c.bin sha256:{digest}\n"
            "print(len(open('c.bin','rb').read()))",
        )
    assert "300000" in ok[0]


@pytest.mark.parametrize(
    ("path", "message"),
    [("f/missing.bin", "HTTP 404"), ("unreachable", "cannot download http://127.0.0.1:9/")],
)
def test_http_errors_and_unreachable_hosts_are_clear(
    tmp_path: Path, path: str, message: str
) -> None:
    with serve() as server:
        url = "http://127.0.0.1:9/x.bin" if path == "unreachable" else server.url + path
        (out,), _ = run(tmp_path, f"#seal data x.bin <- {url} sha256:{'1' * 64}")
    assert "DataFetchError" in out
    assert message in out
    assert "nothing was stored" in out or "check the URL" in out


def test_local_files_are_hashed_and_copied_never_bound_live(tmp_path: Path) -> None:
    source = tmp_path / "inputs" / "local.txt"
    source.parent.mkdir()
    source.write_bytes(b"version one\n" + os.urandom(16).hex().encode())
    digest = sha256(source.read_bytes())
    (out, out2), _ = run(
        tmp_path,
        f"#seal data local.txt <- inputs/local.txt sha256:{digest}\n"
        f"#seal data same.txt <- file://{source} sha256:{digest}\n"
        "print(open('local.txt').read()[:11])",
        "print(open('same.txt').read()[:11])",
    )
    assert "version one" in out
    assert "version one" in out2
    stored = DataStore().lookup(digest)
    assert stored is not None
    assert stored.stat().st_ino != source.stat().st_ino
    source.write_text("version two")  # the notebook still sees what it declared
    (again,), _ = run(
        tmp_path,
        f"#seal data local.txt <- inputs/local.txt sha256:{digest}\n"
        "print(open('local.txt').read()[:11])",
    )
    assert "version one" in again


def test_two_kernels_asking_at_once_share_one_download(tmp_path: Path) -> None:
    content = os.urandom(640 * 1024)  # 1 s through the slow path
    digest = sha256(content)
    with serve() as server, running_kernel() as (_, kc1), running_kernel() as (_, kc2):
        server.add("s.bin", content)
        cell = (
            f"#seal data s.bin <- {server.url}slow/s.bin sha256:{digest}\n"
            "print(len(open('s.bin','rb').read()))"
        )
        ids = [kc1.execute(cell), kc2.execute(cell)]
        results = [
            collect(kc, msg_id, timeout=120) for kc, msg_id in zip((kc1, kc2), ids, strict=True)
        ]
        assert [r.status for r in results] == ["ok", "ok"], [r.reply["content"] for r in results]
        assert [r.stdout.strip().splitlines()[-1] for r in results] == ["655360", "655360"]
        assert server.hits["/slow/s.bin"] == 1


def test_an_interrupted_download_stores_nothing_and_can_be_retried(tmp_path: Path) -> None:
    content = os.urandom(64 * 1024 * 100)  # 10 s through the slow path
    digest = sha256(content)
    with serve() as server, running_kernel() as (km, kc):
        server.add("i.bin", content)
        msg_id = kc.execute(f"#seal data i.bin <- {server.url}slow/i.bin sha256:{digest}")
        time.sleep(1.5)
        km.interrupt_kernel()
        result = collect(kc, msg_id, timeout=60)
        assert result.status == "error"
        assert "interrupted" in result.reply["content"]["evalue"]
        assert DataStore().lookup(digest) is None
        assert leftovers() == []
        retry = execute(
            kc,
            f"#seal data i.bin <- {server.url}f/i.bin sha256:{digest}\n"
            "print(len(open('i.bin','rb').read()))",
        )
        assert retry.stdout.strip().endswith(str(len(content)))


def _run_limited(args: list[str], *, fsize: int | None = None) -> tuple[int, str, int]:
    """Run `nbseal ARGS`; return exit code, stderr and peak RSS in KiB."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.Popen(
        [sys.executable, "-m", "nbseal", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, stderr, usage.ru_maxrss


def test_a_large_download_streams_with_flat_memory(tmp_path: Path) -> None:
    size = 400 * 1024 * 1024
    path = tmp_path / "nb.ipynb"
    small = tmp_path / "small.ipynb"
    nbformat.write(notebook("print('hi')"), path)
    nbformat.write(notebook("print('hi')"), small)
    with serve() as server:
        # The same command for 1 MiB: what the interpreter and its imports take
        # (60-100 MB here, with nbformat's schema validation), not the download.
        code, stderr, baseline_kib = _run_limited(
            ["data", "add", str(small), f"{server.url}big/{1024 * 1024}"]
        )
        assert code == 0, stderr
        code, stderr, peak_kib = _run_limited(["data", "add", str(path), f"{server.url}big/{size}"])
    assert code == 0, stderr
    digest = big_sha256(size)
    stored = DataStore().lookup(digest)
    assert stored is not None
    assert stored.stat().st_size == size
    grown = (peak_kib - baseline_kib) * 1024
    assert grown < size / 16, (
        f"peak RSS {peak_kib / 1024:.0f} MB for a 400 MB file, "
        f"{baseline_kib / 1024:.0f} MB for 1 MiB: the download is not streamed"
    )
    first = nbformat.read(path, as_version=4).cells[0].source
    assert first == f"#seal data {size} <- {server.url}big/{size} sha256:{digest}"
    stored.unlink()  # 400 MB: do not keep it in the test store


def test_a_full_disk_stores_nothing_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("print('hi')"), path)
    with serve() as server:
        code, stderr, _ = _run_limited(
            ["data", "add", str(path), f"{server.url}big/{8 * 1024 * 1024}"], fsize=1024 * 1024
        )
    assert code == 2
    assert "no space left to store the data" in stderr
    assert "NBSEAL_CACHE_DIR" in stderr
    assert DataStore().lookup(big_sha256(8 * 1024 * 1024)) is None
    assert leftovers() == []


def test_data_add_then_lock_records_the_hash(tmp_path: Path) -> None:
    content = os.urandom(10_000)
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("#seal pin 2025-06-01\nx = 1"), path)
    with serve() as server:
        url = server.add("added.bin", content)
        added = nbseal("data", "add", str(path), url, "--name", "inputs/added.bin")
    assert added.returncode == 0, added.stderr
    source = nbformat.read(path, as_version=4).cells[0].source
    line = f"#seal data inputs/added.bin <- {url} sha256:{sha256(content)}"
    assert source.splitlines() == [line, "#seal pin 2025-06-01", "x = 1"]
    assert nbseal("lock", str(path)).returncode == 0
    recorded = nbformat.read(path, as_version=4).metadata["nbseal"]["data"]
    assert recorded == {"inputs/added.bin": {"url": url, "sha256": sha256(content)}}
    assert nbseal("lock", "--check", str(path)).returncode == 0
    listed = nbseal("data", "list")
    assert url in listed.stdout
    assert sha256(content)[:16] in listed.stdout
    (out,), _ = run(
        tmp_path, source + "\nprint(open('inputs/added.bin','rb').read() == " + repr(content) + ")"
    )
    assert "True" in out


def test_a_download_shows_a_progress_bar_with_bytes_and_rate(tmp_path: Path) -> None:
    content = os.urandom(64 * 1024 * 12)  # 1.2 s through the slow path
    with serve() as server, running_kernel() as (_, kc):
        server.add("p.bin", content)
        result = execute(kc, f"#seal data p.bin <- {server.url}slow/p.bin sha256:{sha256(content)}")
    assert result.status == "ok", result.reply["content"]
    updates = [m["content"]["data"] for m in result.outputs if "data" in m["content"]]
    moving = [u for u in updates if "<progress" in u["text/html"]]
    assert moving, "a bar while it downloads"
    assert "MB of 0.8 MB at" in moving[0]["text/plain"]
    assert "MB/s" in moving[0]["text/plain"]
    assert "fetched, verified and stored" in updates[-1]["text/plain"]
    ids = {
        m["content"]["transient"]["display_id"] for m in result.outputs if "data" in m["content"]
    }
    assert len(ids) == 1, "one display, updated in place"


def test_data_gc_removes_unused_files_and_abandoned_downloads(tmp_path: Path) -> None:
    env = {**os.environ, "NBSEAL_CACHE_DIR": str(tmp_path / "cache")}
    source = tmp_path / "x.bin"
    source.write_bytes(os.urandom(1000))
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook("x = 1"), path)
    assert nbseal("data", "add", str(path), str(source), env=env).returncode == 0
    root = tmp_path / "cache" / "data"
    abandoned = root / f".partial-{'a' * 64}-deadbeef"
    abandoned.write_bytes(b"half")
    assert len(list((root / "sha256").iterdir())) == 1
    kept = nbseal("data", "gc", "--older-than", "1", env=env)
    assert "removed 0 data files" in kept.stdout
    assert not abandoned.exists()
    gone = nbseal("data", "gc", "--older-than", "0", env=env)
    assert "removed 1 data files" in gone.stdout
    assert list((root / "sha256").iterdir()) == []
