"""atomic_write_text: whole files or nothing, and never a device or a link replaced.

Found the hard way: `nbseal run NB -o /dev/null` run by root renamed its
temporary file over /dev/null, and every sandboxed kernel on the machine
then failed at start (the sandbox binds the host's /dev/null).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from nbseal.fsutil import atomic_write_text


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.ipynb"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.ipynb"]  # no temporary left


def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    atomic_write_text(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a character device needs root")
def test_a_null_device_stays_a_device(tmp_path: Path) -> None:
    null = tmp_path / "null"  # a /dev/null of the test's own
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    atomic_write_text(null, "discarded")
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert os.stat(null).st_rdev == os.makedev(1, 3)


def test_a_symlink_stays_a_link_and_its_target_is_written(tmp_path: Path) -> None:
    real = tmp_path / "real.ipynb"
    real.write_text("old")
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"
