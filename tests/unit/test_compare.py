"""Output normalisation and diffs for `nbseal verify` (pure)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from nbseal.compare import DEFAULT_SANITIZERS, diff_outputs, load_sanitizers, normalise_outputs
from nbseal.errors import NotebookError


def stream(text: str, name: str = "stdout") -> dict[str, object]:
    return {"output_type": "stream", "name": name, "text": text}


def data(bundle: dict[str, object]) -> dict[str, object]:
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def png(width: int, height: int, changed: int = 0) -> str:
    image = Image.new("RGB", (width, height), "white")
    for x in range(changed):
        image.putpixel((x, 0), (255, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_addresses_timings_and_nbseal_displays_are_normalised_away() -> None:
    first = [
        stream("<object object at 0x7f3a2c1b9e40>\n"),
        stream("CPU times: user 3 µs, sys: 0 ns, total: 3 µs\nWall time: 5.25 µs\n"),
        data({"text/plain": "✓ nbseal · py: ...", "application/vnd.nbseal.progress+json": {}}),
        stream("nbseal: environment 'py' is resolved as of 2026-11-29T02:00:00Z\n"),
    ]
    second = [
        stream("<object object at 0x7f99aa001122>\n"),
        stream("CPU times: user 9 µs, sys: 1 µs, total: 10 µs\nWall time: 11 µs\n"),
    ]
    assert normalise_outputs(first, DEFAULT_SANITIZERS) == normalise_outputs(
        second, DEFAULT_SANITIZERS
    )
    assert normalise_outputs(second, DEFAULT_SANITIZERS)[0][0] == "stream:stdout", "merged"


def test_a_text_difference_is_a_unified_diff() -> None:
    stored = normalise_outputs([stream("a\nb\nc\n")], DEFAULT_SANITIZERS)
    fresh = normalise_outputs([stream("a\nB\nc\n")], DEFAULT_SANITIZERS)
    diff = diff_outputs(stored, fresh)
    assert diff[0] == "stream:stdout:"
    assert "-b" in diff
    assert "+B" in diff
    assert diff_outputs(stored, stored) == []


def test_html_and_json_are_compared_normalised() -> None:
    one = [data({"text/html": "<b>x</b>\n   <i>y</i>", "application/json": {"b": 1, "a": 2}})]
    two = [data({"text/html": "<b>x</b><i>y</i>", "application/json": {"a": 2, "b": 1}})]
    assert (
        diff_outputs(
            normalise_outputs(one, DEFAULT_SANITIZERS), normalise_outputs(two, DEFAULT_SANITIZERS)
        )
        == []
    )


def test_images_are_ignored_by_default_and_measured_on_request() -> None:
    stored = [data({"image/png": png(10, 10), "text/plain": "<Figure>"})]
    fresh = [data({"image/png": png(10, 10, changed=5), "text/plain": "<Figure>"})]
    plain = [normalise_outputs(o, DEFAULT_SANITIZERS) for o in (stored, fresh)]
    assert diff_outputs(*plain) == []
    compared = [normalise_outputs(o, DEFAULT_SANITIZERS, images=True) for o in (stored, fresh)]
    assert diff_outputs(*compared) == [
        "data:image/png: image differs (5 of 100 pixels differ (5.00%))"
    ]
    resized = [data({"image/png": png(20, 10), "text/plain": "<Figure>"})]
    grown = normalise_outputs(resized, DEFAULT_SANITIZERS, images=True)
    assert "size 10x10 became 20x10" in diff_outputs(compared[0], grown)[0]


def test_a_missing_output_is_named() -> None:
    stored = normalise_outputs([stream("x\n")], DEFAULT_SANITIZERS)
    diff = diff_outputs(stored, [])
    assert diff == ["outputs differ: stored ['stream:stdout'], got []"]


def test_errors_compare_name_and_value_not_the_traceback() -> None:
    one = [{"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["a"]}]
    two = [{"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["b"]}]
    assert normalise_outputs(one, ()) == normalise_outputs(two, ()) == [("error", "E: v")]


def test_sanitiser_files_in_nbval_format(tmp_path: Path) -> None:
    good = tmp_path / "good.cfg"
    good.write_text("[date]\nregex: \\d{4}-\\d{2}-\\d{2}\nreplace: DATE\n")
    (sanitizer,) = load_sanitizers(good)
    assert sanitizer.apply("on 2025-06-01.") == "on DATE."
    bad = tmp_path / "bad.cfg"
    bad.write_text("[broken]\nregex: (unclosed\n")
    with pytest.raises(NotebookError, match=r"section \[broken\].*bad regex"):
        load_sanitizers(bad)
    missing = tmp_path / "missing.cfg"
    missing.write_text("[x]\nreplace: y\n")
    with pytest.raises(NotebookError, match="has no regex"):
        load_sanitizers(missing)
