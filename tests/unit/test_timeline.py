"""The run timeline: events from several processes in one file, in order."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbseal import timeline


def test_without_the_variable_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(timeline.TIMELINE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    timeline.mark("nbseal run", "something")
    assert list(tmp_path.iterdir()) == []


def test_two_processes_write_one_timeline_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "timeline"
    monkeypatch.setenv(timeline.TIMELINE_ENV, str(path))
    timeline.mark("nbseal run", "before the child")
    child = "from nbseal.timeline import mark; mark('proxy', 'in the child\\tand a tab')"
    subprocess.run([sys.executable, "-c", child], check=True)
    timeline.mark("nbseal run", "after the child")
    events = timeline.read_timeline(path)
    assert [(e.who, e.what) for e in events] == [
        ("nbseal run", "before the child"),
        ("proxy", "in the child and a tab"),
        ("nbseal run", "after the child"),
    ]
    lines = timeline.render(events)
    assert lines[0].split()[:2] == ["0.000", "s"]
    assert lines[1].endswith("proxy       in the child and a tab")


def test_a_process_start_is_when_the_process_started() -> None:
    before = time.time()
    child = "from nbseal.timeline import process_started_at; print(process_started_at())"
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    after = time.time()
    started = float(done.stdout)
    # /proc counts in clock ticks (10 ms) since boot, and uptime has 10 ms steps too.
    assert before - 0.05 <= started <= after + 0.05


def test_a_damaged_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "timeline"
    path.write_text("1.5\tproxy\tok\nnot a line\nx\ty\tz\n0.5\tnbseal run\tfirst\n")
    assert [e.what for e in timeline.read_timeline(path)] == ["first", "ok"]
