"""Runtime folders: a named one keeps its path from one run to the next, unless taken."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from nbseal import runtime_dirs
from nbseal.runtime_dirs import OWNER_FILE, make_runtime_dir, owned_by_live_process


def test_a_named_folder_has_that_name_and_a_taken_name_gives_a_fresh_folder(
    tmp_path: Path,
) -> None:
    first = make_runtime_dir("nbseal-build-", tmp_path, name="abc")
    assert first == tmp_path / "nbseal-build-abc"
    assert (first / OWNER_FILE).read_text().split()[0] == str(os.getpid())
    assert owned_by_live_process(first)
    second = make_runtime_dir("nbseal-build-", tmp_path, name="abc")
    assert second != first
    assert second.parent == tmp_path
    assert second.name.startswith("nbseal-build-")
    assert owned_by_live_process(second)
    assert oct(second.stat().st_mode & 0o777) == oct(first.stat().st_mode & 0o777) == "0o700"


def test_a_deep_tmpdir_gives_way_to_a_short_base_for_sockets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    base = runtime_dirs.runtime_base()
    assert len(str(base)) <= 48
    assert base == Path("/tmp")
    made = runtime_dirs.make_runtime_dir("nbseal-test-")
    try:
        assert made.parent == base
        assert runtime_dirs.owned_by_live_process(made)
    finally:
        shutil.rmtree(made)


def test_a_short_tmpdir_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(short))
        assert runtime_dirs.runtime_base() == short
    finally:
        short.rmdir()
