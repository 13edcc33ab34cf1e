"""A file next to the notebook that the sandbox does not show: the cell says why and what to do."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from jupyter_client import KernelManager

from tests.kernel.helpers import execute

pytestmark = pytest.mark.usefixtures("default_env")


def test_a_file_next_to_the_notebook_gets_a_hint_and_declaring_it_works(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bikes.csv").write_text("day,count\nmon,3\n")
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(cwd=str(tmp_path))  # as jupyter_server starts it: in the notebook's folder
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        result = execute(kc, "open('data/bikes.csv').read()")
        assert result.status == "error"
        hints = [m["content"]["text"] for m in result.of_type("stream")]
        assert len(hints) == 1
        assert hints[0].startswith("nbseal: data/bikes.csv is next to the notebook")
        assert "`nbseal data add NOTEBOOK data/bikes.csv`" in hints[0]

        result = execute(kc, "open('data').read()")
        hints = [m["content"]["text"] for m in result.of_type("stream")]
        assert len(hints) == 1
        assert "`#seal share data`" in hints[0]

        result = execute(kc, "open('not-anywhere.csv')")
        assert result.status == "error"
        assert result.of_type("stream") == []  # nothing on the host either: no hint

        digest = hashlib.sha256((tmp_path / "data" / "bikes.csv").read_bytes()).hexdigest()
        code = f"#seal data data/bikes.csv <- data/bikes.csv sha256:{digest}\n"
        result = execute(kc, code + "print(open('data/bikes.csv').read().split()[1])")
        assert result.status == "ok"
        assert "mon,3" in result.stdout
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def test_relative_shares_and_data_appear_where_relative_paths_look(tmp_path: Path) -> None:
    """``data/`` and ``../styles/custom.css`` as the notebook's folder has them (issue 16)."""
    project = tmp_path / "project"
    (project / "notebooks" / "data").mkdir(parents=True)
    (project / "notebooks" / "data" / "a.txt").write_text("in data\n")
    (project / "notebooks" / "vendored").mkdir()
    (project / "notebooks" / "vendored" / "custom.css").write_text("body {}\n")
    (project / "lib").mkdir()
    (project / "lib" / "x.txt").write_text("in lib\n")
    digest = hashlib.sha256(b"body {}\n").hexdigest()
    km = KernelManager(kernel_name="nbseal")
    km.start_kernel(cwd=str(project / "notebooks"))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        code = (
            "#seal share data\n#seal share ../lib\n"
            f"#seal data ../styles/custom.css <- vendored/custom.css sha256:{digest}\n"
            "print(open('data/a.txt').read(), open('../lib/x.txt').read(),"
            " open('../styles/custom.css').read())"
        )
        result = execute(kc, code)
        assert result.status == "ok", [m["content"]["evalue"] for m in result.of_type("error")]
        assert result.stdout.split() == ["in", "data", "in", "lib", "body", "{}"]
        # Shares are read-only; the links beside the working directory are the sandbox's own.
        result = execute(kc, "open('data/new.txt', 'w')")
        assert result.status == "error"
        result = execute(kc, "import os\nos.remove('../lib')")
        assert result.status == "error"
        assert (project / "lib" / "x.txt").exists()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    # Nothing was made on the host beside the notebook or in its folder.
    assert sorted(p.name for p in (project / "notebooks").iterdir()) == ["data", "vendored"]
    assert sorted(p.name for p in project.iterdir()) == ["lib", "notebooks"]
