"""Streams as a frontend shows and stores them (nbseal.streams): pure."""

from __future__ import annotations

from typing import Any

import pytest

from nbseal.streams import as_displayed, merge_streams
from tests.bounded import stdout_within


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain\ntext\n", "plain\ntext\n"),
        ("\r  0%|   | 0/3\r 33%|█  | 1/3\r100%|███| 3/3\n", "100%|███| 3/3\n"),
        ("abcdef\rXY\n", "XYcdef\n"),  # overwritten, not cut (as JupyterLab shows it)
        ("done\r\nnext", "done\nnext"),
        ("spin |\b/\b-\bok\n", "spin ok\n"),  # a backspace at the end erases
        ("ab\rx\by\n", "yb\n"),  # elsewhere it moves back only
        ("\b\rstart\n", "start\n"),  # nothing before the line's start
    ],
)
def test_streams_are_compared_as_a_frontend_shows_them(raw: str, shown: str) -> None:
    assert as_displayed(raw) == shown


def _stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def test_consecutive_pieces_of_one_stream_become_its_last_state() -> None:
    display = {"output_type": "display_data", "data": {"text/plain": "'x'"}, "metadata": {}}
    outputs = [
        _stream("\rstep 1/3"),
        _stream("\rstep 2/3"),
        _stream("\rstep 3/3"),
        _stream("\n"),
        _stream("warned\n", "stderr"),  # another stream: kept apart
        display,
        _stream(["after", "\n"]),  # a list of lines, as nbformat allows
    ]
    merged, where = merge_streams(outputs)
    assert merged == [
        _stream("step 3/3\n"),
        _stream("warned\n", "stderr"),
        display,
        _stream("after\n"),
    ]
    # For each output given, the one it became part of.
    assert where == [0, 0, 0, 0, 1, 2, 3]


def test_streams_a_display_separates_stay_apart() -> None:
    display = {"output_type": "display_data", "data": {}, "metadata": {}}
    merged, where = merge_streams([_stream("a\n"), display, _stream("b\n")])
    assert [o.get("text") for o in merged] == ["a\n", None, "b\n"]
    assert where == [0, 1, 2]


def test_a_cell_s_many_pieces_merge_in_one_pass() -> None:
    # 200,000 updates of a progress bar (a long loop, or a hostile cell): merged
    # by adding each piece to the text so far, they copied gigabytes.
    code = (
        "from nbseal.compare import DEFAULT_SANITIZERS, normalise_outputs\n"
        "from nbseal.streams import merge_streams\n"
        "piece = {'output_type': 'stream', 'name': 'stdout', 'text': 'x' * 20 + '\\r'}\n"
        "outputs = [dict(piece) for _ in range(200_000)]\n"
        "print(normalise_outputs(outputs, DEFAULT_SANITIZERS)[0][1])\n"
        "print(merge_streams(outputs)[0][0]['text'])\n"
    )
    assert stdout_within(code) == "x" * 20 + "\n" + "x" * 20 + "\n"
