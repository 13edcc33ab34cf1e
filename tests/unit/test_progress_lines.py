"""A build's steps while it runs: the kernel's tick, and the lines `nbseal run`/`verify` print."""

from __future__ import annotations

import asyncio

import pytest

from nbseal.cli import output
from nbseal.kernel import pool
from nbseal.progress import Progress, ProgressEvent
from nbseal.runner import RunEvent


def test_a_step_that_lasts_is_told_again_until_the_build_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool, "TICK_SECONDS", 0.01)
    progress = Progress("np")
    events: list[ProgressEvent] = []
    progress.subscribe(events.append)

    async def build() -> None:
        ticker = asyncio.ensure_future(pool._tick(progress))
        progress.step("Building numpy==1.14.5")
        while len(events) < 3:  # the step, then two ticks
            await asyncio.sleep(0.01)
        progress.finish("done")
        told = len(events)
        for _ in range(5):  # after the end, no tick
            await asyncio.sleep(0.01)
        ticker.cancel()
        assert len(events) == told

    asyncio.run(build())
    steps = [event.step for event in events]
    assert steps[:3] == ["Building numpy==1.14.5"] * 3
    assert steps[-1] == "done"
    assert events[2].elapsed > events[0].elapsed, "a tick carries the time so far"


def test_each_new_step_is_a_line_a_repeated_one_is_not(capsys: pytest.CaptureFixture[str]) -> None:
    lines = output.ProgressLines("nb.ipynb: ", cells=False)
    for text in (
        "… nbseal · np: installing 31 packages (0.1 s)",
        "… nbseal · np: Building numpy==1.14.5 (0.7 s)",
        "… nbseal · np: Building numpy==1.14.5 (10.7 s)",  # a tick within half a minute
        "✗ nbseal · np: failed after 11.0 s (UvError, below)",
    ):
        lines(RunEvent("progress", 1, 3, text))
    lines(RunEvent("cell-done", 1, 3, "ok", 0.5))  # verify prints no cell lines
    assert capsys.readouterr().err.splitlines() == [
        "    nb.ipynb: … nbseal · np: installing 31 packages (0.1 s)",
        "    nb.ipynb: … nbseal · np: Building numpy==1.14.5 (0.7 s)",
        "    nb.ipynb: ✗ nbseal · np: failed after 11.0 s (UvError, below)",
    ]
