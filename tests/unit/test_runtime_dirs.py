"""Runtime folders: a named one keeps its path from one run to the next, unless taken."""

from __future__ import annotations

import os
from pathlib import Path

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
