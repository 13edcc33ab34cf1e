"""Guix-Jupyter notebooks through the real nbseal kernel, on a machine without Guix.

A `;;guix environment` cell must say that guix is not installed and what to
do, and leave the kernel working; `;;guix pin`, `;;guix download` and
`;;guix describe` need no Guix and work as their `#seal` twins.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from nbseal.digests import nix_base32_encode
from tests.dataserver import serve
from tests.e2e.test_cli import nbseal, notebook
from tests.kernel.helpers import execute, running_kernel

pytestmark = [
    pytest.mark.usefixtures("default_env"),
    pytest.mark.skipif(shutil.which("guix") is not None, reason="guix is installed here"),
]

GUIX_ENV = ";;guix environment py <- python python-ipykernel"


def error_text(content: dict[str, object]) -> str:
    traceback = content.get("traceback") or []
    assert isinstance(traceback, list)
    return "\n".join(str(line) for line in traceback)


def test_a_guix_environment_says_guix_is_missing_and_the_kernel_goes_on() -> None:
    with running_kernel() as (km, kc):
        result = execute(kc, f"{GUIX_ENV}\nimport sys\nprint(sys.version)")
        assert result.status == "error"
        reply = result.reply["content"]
        assert reply["ename"] == "GuixUnavailableError"
        assert reply["evalue"] == "guix is not installed on this machine"
        (error,) = result.of_type("error")
        text = error_text(error["content"])
        assert "guix is not installed on this machine" in text
        assert GUIX_ENV in text  # the context names the cell's directive
        assert "install Guix" in text
        assert "#seal env NAME <- ..." in text
        # The code after the directive ran nowhere: only nbseal's own notes are printed.
        assert all(line.startswith("nbseal:") for line in result.stdout.splitlines())

        # The kernel answers the next cell: the Guix environment still cannot
        # start, and switching to another environment runs code again.
        again = execute(kc, "print('in py')")
        # A failed environment is told once, then referred to (not built again).
        told = {"GuixUnavailableError", "EnvironmentFailedError"}
        assert again.status == "ok" or again.reply["content"]["ename"] in told
        assert "in py" not in again.stdout
        back = execute(kc, "#seal env default\nprint('alive', 6 * 7)")
        assert back.status == "ok", back.reply["content"]
        assert back.stdout == "alive 42\n"
        assert km.is_alive()


def test_guix_pin_download_and_describe_work_without_guix() -> None:
    content = os.urandom(20_000)
    digest = hashlib.sha256(content).digest()
    with serve() as server, running_kernel() as (_, kc):
        url = server.add("measures.bin", content)
        pin = execute(kc, ";;guix pin 0123456789abcdef0123456789abcdef01234567")
        assert pin.status == "ok", pin.reply["content"]
        fetched = execute(
            kc,
            f";;guix download {url} {nix_base32_encode(digest)}\n"
            "import hashlib\n"
            "print(hashlib.sha256(open('measures.bin', 'rb').read()).hexdigest())",
        )
        assert fetched.status == "ok", fetched.reply["content"]
        assert fetched.stdout.strip().endswith(digest.hex())
        assert server.hits["/f/measures.bin"] == 1
        described = execute(kc, ";;guix describe")
        assert described.status == "ok", described.reply["content"]
        assert described.of_type("display_data")


def test_a_wrong_guix_hash_is_refused_like_a_seal_data_hash() -> None:
    with serve() as server, running_kernel() as (_, kc):
        url = server.add("w.bin", b"the real bytes")
        wrong = nix_base32_encode(hashlib.sha256(b"other bytes").digest())
        result = execute(kc, f";;guix download {url} {wrong}\nprint('ran')")
    assert result.status == "error"
    assert result.reply["content"]["ename"] == "DataHashError"
    assert "ran" not in result.stdout


def test_a_malformed_guix_line_names_the_line_and_the_form() -> None:
    with running_kernel() as (_, kc):
        result = execute(kc, ";;guix environment py python\nprint('never')")
    assert result.reply["content"]["ename"] == "DirectiveError"
    text = error_text(result.reply["content"])
    assert "line 1: expected `<-` after the environment name" in text
    assert "expected `;;guix environment NAME <- PACKAGE...`" in text
    assert "never" not in result.stdout


def test_nbseal_run_names_the_guix_cell(tmp_path: Path) -> None:
    path = tmp_path / "guix.ipynb"
    nbformat.write(notebook("print('before')", f"{GUIX_ENV}\nprint('never')"), path)
    proc = nbseal("run", str(path))
    assert proc.returncode == 1
    assert "FAILED at cell 2" in proc.stderr
    assert "GuixUnavailableError" in proc.stderr
    written = nbformat.read(path, as_version=4)
    assert written.cells[0].outputs[0]["text"] == "before\n"
    (error,) = [out for out in written.cells[1].outputs if out["output_type"] == "error"]
    assert error["ename"] == "GuixUnavailableError"
    assert "guix is not installed on this machine" in error["evalue"]


def test_with_a_stand_in_guix_a_guix_cell_runs_in_its_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_env: Path
) -> None:
    """The whole path with `guix` replaced by a script: the profile's kernel is
    the default environment's ipykernel, run by the script's `guix shell`."""
    from tests.fakeguix import calls, install_fake_guix

    kernel = [str(default_env / "bin" / "python"), "-m", "ipykernel_launcher"]
    log = install_fake_guix(tmp_path, monkeypatch, [*kernel, "-f", "{connection_file}"])
    commit = os.urandom(20).hex()  # a new lock, so a new store entry, every run
    with running_kernel() as (_, kc):
        result = execute(
            kc,
            f";;guix pin {commit}\n{GUIX_ENV}\nimport os\nprint('in guix at', os.getcwd())",
            timeout=120,
        )
        assert result.status == "ok", result.reply["content"]
        assert "in guix at" in result.stdout
        seal = execute(kc, "#seal env default\nprint('back')")
        assert seal.stdout.endswith("back\n")
    argvs = calls(log)
    describe = ["describe", "--format=channels"]
    assert argvs[0] == ["time-machine", "-q", f"--commit={commit}", "--", *describe]
    (start,) = [a for a in argvs if a[:2] == ["shell", "--container"]]
    assert start[start.index("--") + 1 :][:3] == kernel
