"""What `--cluster local:N` relies on to start fast: a light client, a forkserver's preload."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from nbseal.errors import ClusterError
from nbseal.localworkers import PRELOAD, local_workers

HEAVY = ("nbclient", "nbformat", "jsonschema", "jupyter_client")


def test_local_n_gives_n_workers() -> None:
    assert local_workers("local:1") == 1
    assert local_workers("local:12") == 12


@pytest.mark.parametrize("spec", ["local:0", "local:", "remote:3", "local:2x", "2"])
def test_anything_else_is_refused_with_the_form_to_write(spec: str) -> None:
    with pytest.raises(ClusterError) as raised:
        local_workers(spec)
    assert raised.value.spec == spec
    assert "local:N" in raised.value.hint


def test_the_client_side_never_imports_what_only_workers_need() -> None:
    """The CLI's verify on a cluster imports nbseal.distributed, never nbclient or nbformat."""
    code = (
        "import sys\n"
        "import nbseal.cli.commands, nbseal.distributed, nbseal.junit, nbseal.report\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert proc.stdout.strip() == "", f"imported on the client side: {proc.stdout.strip()}"


@pytest.mark.parametrize("module", PRELOAD)
def test_every_module_the_forkserver_preloads_exists(module: str) -> None:
    """The forkserver skips a preload it cannot import, silently: a rename would go unseen."""
    assert importlib.import_module(module).__name__ == module


def test_the_forkserver_preload_brings_what_a_verification_needs() -> None:
    code = (
        "import sys\n"
        f"for name in {PRELOAD!r}: __import__(name)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert proc.stdout.strip().split(",") == list(HEAVY)


def test_a_forked_worker_has_the_stack_without_jsonschema_s_iri_grammar(tmp_path: Path) -> None:
    """The forkserver's preload keeps rfc3987_syntax out (1.2 s of CPU per cluster)."""
    code = """
import multiprocessing, sys
from nbseal.localworkers import start_forkserver

def probe():
    return repr(sys.modules.get("rfc3987_syntax", "absent")), "nbseal.runner" in sys.modules

if __name__ == "__main__":
    start_forkserver()
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        print(*pool.apply(probe))
"""
    script = tmp_path / "probe.py"  # a file: the workers unpickle probe from __main__
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    )
    assert proc.stdout.split() == ["None", "True"], proc.stdout + proc.stderr
