"""``#seal describe``'s rows follow the notebook, not the order kernels happened to start."""

from __future__ import annotations

from typing import Any

from nbseal.kernel.pool import EnvironmentPool


def _pool(started: list[str], declared: list[str]) -> Any:
    pool = EnvironmentPool.__new__(EnvironmentPool)  # only the two fields the order reads
    pool.environments = {name: f"slot {name}" for name in started}
    pool.declared = declared
    return pool


def test_a_warm_up_that_started_a_later_environment_first_does_not_reorder_the_table() -> None:
    # The warm-up started "new" before the cell redefining "old" re-inserted it.
    pool = _pool(["default", "new", "old"], declared=["old", "new"])
    assert list(pool.in_notebook_order()) == ["default", "old", "new"]


def test_environments_the_notebook_file_does_not_declare_come_last_as_started() -> None:
    pool = _pool(["typed-later", "old", "default", "also-later"], declared=["old"])
    assert list(pool.in_notebook_order()) == ["default", "old", "typed-later", "also-later"]
