"""The sandbox as a notebook meets it: through `nbseal run`, its directives and flags."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from nbseal.kernel.proxy import UNSEALED_MIME
from nbseal.sandbox.identity import sandbox_identity
from tests.e2e.test_cli import nbseal, notebook

pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on the host's loopback."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def run_cells(tmp_path: Path, *sources: str, args: tuple[str, ...] = (), **env: str) -> list[str]:
    """Run a notebook through `nbseal run`; return each cell's text (stdout, errors, data)."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(*sources), path)
    proc = nbseal("run", str(path), *args, env={**os.environ, **env})
    executed = nbformat.read(path, as_version=4)
    texts = []
    for cell in executed.cells:
        parts = []
        for out in cell.outputs:
            if out["output_type"] == "stream":
                parts.append(out["text"])
            elif out["output_type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
            else:
                parts.append(str(out.get("data", {}).get("text/plain", "")))
        texts.append("".join(parts))
    texts.append(proc.stderr)
    return texts


PROBE = """
def probe(action):
    try:
        return f"ok {action()!r}"[:80]
    except BaseException as exc:
        return f"{type(exc).__name__} {getattr(exc, 'errno', '')}"
"""


def test_a_notebook_cannot_read_its_neighbours_reach_the_host_or_see_tokens(
    tmp_path: Path, server: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    cells = run_cells(
        tmp_path,
        PROBE + f"import os, urllib.request\n"
        f"print('read', probe(lambda: open({str(secret)!r}).read()))\n"
        f"print('list', probe(lambda: os.listdir({str(tmp_path)!r})))\n"
        f"print('http', probe(lambda: urllib.request.urlopen({server!r}, timeout=5).status))\n"
        "print('token', os.environ.get('GITHUB_TOKEN'))\n"
        "print('home', sorted(set(os.listdir(os.path.expanduser('~'))) - {'.ipython'}))\n"
        "print('home-is', os.path.expanduser('~'))\n"
        "print('cwd', os.getcwd(), os.access('.', os.W_OK))",
        GITHUB_TOKEN="ghp_do_not_leak",
    )
    out = cells[0]
    assert "read FileNotFoundError 2" in out
    assert "list FileNotFoundError 2" in out
    assert "http URLError" in out
    assert "token None" in out
    assert "home []" in out, "a fresh HOME: only what ipykernel itself made there"
    assert f"home-is {Path.home()}" not in out
    assert "cwd " in out
    assert out.rstrip().endswith("True"), "the scratch working directory is writable"
    assert "sealed: no network, no host files" in cells[-1]


def test_allow_network_and_share_open_exactly_what_they_name(tmp_path: Path, server: str) -> None:
    shared_ro = tmp_path / "inputs"
    shared_ro.mkdir()
    (shared_ro / "x.txt").write_text("from the host")
    shared_rw = tmp_path / "results"
    shared_rw.mkdir()
    # As root the kernel runs as an unprivileged uid: a writable share must be its.
    sandbox_identity().hand_over(shared_rw)
    cells = run_cells(
        tmp_path,
        f"#seal allow network\n#seal share {shared_ro} ro\n#seal share results rw\n" + PROBE,
        "import urllib.request\n"
        f"print('http', probe(lambda: urllib.request.urlopen({server!r}, timeout=5).status))\n"
        f"print('read', probe(lambda: open({str(shared_ro / 'x.txt')!r}).read()))\n"
        f"print('write-ro', probe(lambda: open({str(shared_ro / 'y')!r}, 'w')))\n"
        f"print('write-rw', probe(lambda: open({str(shared_rw / 'z')!r}, 'w').write('made')))",
        "#seal describe",
    )
    out = cells[1]
    assert "http ok 200" in out
    assert "read ok 'from the host'" in out
    assert "write-ro OSError 30" in out, "EROFS: a read-only share refuses writes"
    assert "write-rw ok 4" in out
    assert (shared_rw / "z").read_text() == "made"
    assert not (shared_ro / "y").exists()
    assert "sealed; exceptions: network" in cells[2]
    assert f"share {shared_rw} (rw)" in cells[2]
    assert "network (#seal allow network)" in cells[-1], "nbseal run lists the exceptions"


def test_share_of_a_missing_path_is_a_directive_error(tmp_path: Path) -> None:
    cells = run_cells(tmp_path, "#seal share no-such-dir ro\nprint('ran')")
    assert "DirectiveError: line 1: no-such-dir does not exist" in cells[0]
    assert "ran" not in cells[0]


def test_keep_workdir_keeps_what_the_notebook_wrote(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    cells = run_cells(
        tmp_path,
        "import os\nopen('figure.txt', 'w').write('plot')\nprint(os.getcwd())",
        args=("--keep-workdir", str(kept)),
    )
    assert (kept / "figure.txt").read_text() == "plot"
    assert cells[0].strip() == str(kept.resolve())


# A kernel's last act: a file written as its interpreter exits, after its shutdown_reply.
AT_EXIT = (
    "import atexit, time\n"
    "def last_words(path):\n"
    "    time.sleep(0.5)  # well after the shutdown_reply\n"
    "    open(path, 'w').write('bye')\n"
)


def _verbose_run(tmp_path: Path, *sources: str, args: tuple[str, ...] = ()) -> str:
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(*sources), path)
    proc = nbseal("run", "--verbose", str(path), *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_what_a_kernel_writes_as_it_exits_is_kept_where_it_can_be_seen(tmp_path: Path) -> None:
    """A kernel's teardown is waited for when it can leave a trace: a kept workdir, a rw share."""
    kept = tmp_path / "kept"
    shared = tmp_path / "results"
    shared.mkdir()
    sandbox_identity().hand_over(shared)  # as root the kernel runs as an unprivileged uid
    said = _verbose_run(
        tmp_path,
        f"#seal share {shared} rw\n" + AT_EXIT + "atexit.register(last_words, 'in-workdir')",
        f"atexit.register(last_words, {str(shared / 'in-share')!r})",
        args=("--keep-workdir", str(kept)),
    )
    assert (kept / "in-workdir").read_text() == "bye"
    assert (shared / "in-share").read_text() == "bye"
    assert "killed after its shutdown_reply" not in said


def test_a_kernel_whose_exit_nobody_can_see_is_not_waited_for(tmp_path: Path) -> None:
    """Sealed, no network, no writable share, workdir removed: killed at its shutdown_reply."""
    said = _verbose_run(tmp_path, AT_EXIT + "atexit.register(last_words, 'in-workdir')")
    assert "proxy       environment default: killed after its shutdown_reply" in said


def test_the_scratch_workdir_is_removed_by_default(tmp_path: Path) -> None:
    cells = run_cells(tmp_path, "import os\nopen('f', 'w').write('x')\nprint(os.getcwd())")
    scratch = Path(cells[0].strip())
    assert scratch.is_absolute()
    assert not scratch.exists()


def test_no_sandbox_is_explicit_and_recorded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("visible")
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(f"print(open({str(secret)!r}).read())"), path)
    proc = nbseal("run", "--no-sandbox", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "UNSEALED (--no-sandbox)" in proc.stderr
    executed = nbformat.read(path, as_version=4)
    outputs = executed.cells[0].outputs
    assert any(UNSEALED_MIME in o.get("data", {}) for o in outputs)
    assert any(o.get("text") == "visible\n" for o in outputs)
    assert executed.metadata["nbseal"]["last_run"]["sealed"] is False


def test_without_a_usable_bwrap_the_kernel_refuses_and_says_how_to_fix(tmp_path: Path) -> None:
    cells = run_cells(tmp_path, "print('must not run')", NBSEAL_BWRAP="/bin/false")
    assert "SandboxUnavailableError" in cells[0]
    assert "must not run" not in cells[0]
    assert "--no-sandbox" in cells[-1]


def test_seal_limit_caps_the_kernel_and_is_listed(tmp_path: Path) -> None:
    bomb = (
        "import errno, os, signal, time\n"
        "kids, failure = [], None\n"
        "try:\n"
        "    for _ in range(500):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        kids.append(pid)\n"
        "except OSError as exc:\n"
        "    failure = errno.errorcode[exc.errno]\n"
        "for pid in kids:\n"
        "    os.kill(pid, signal.SIGKILL)\n"
        "    os.waitpid(pid, 0)\n"
        "print('forked', len(kids) < 64, failure)"
    )
    cells = run_cells(tmp_path, "#seal limit processes=64 tmp=8M", bomb, "#seal describe")
    assert "forked True EAGAIN" in cells[1]
    assert "limits: 64 processes, memory 8 GiB, tmp 8 MiB each" in cells[2]
    assert "limits: 64 processes, memory 8 GiB, tmp 8 MiB each (#seal limit)" in cells[-1]
    # A value too low is refused before anything runs, naming cell and line.
    cells = run_cells(tmp_path, "print('ran')", "#seal limit memory=1")
    assert "ran" not in cells[0]
    assert "cell 2, line 1: memory=1 bytes is below 64 MiB" in cells[-1]
