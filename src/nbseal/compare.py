"""Comparing a cell's stored outputs with fresh ones, after normalisation.

Pure functions over nbformat output dicts. What cannot be reproduced by
design is normalised away before comparing: execution counts, memory
addresses, timings printed by ``%time``/``%timeit``, nbseal's own progress
and lock displays, and widget model ids. Users add regex sanitisers in
nbval's file format.
"""

from __future__ import annotations

import base64
import configparser
import difflib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbseal.errors import NotebookError

__all__ = [
    "DEFAULT_SANITIZERS",
    "Sanitizer",
    "diff_outputs",
    "load_sanitizers",
    "normalise_outputs",
]

# nbseal's own displays, and views whose ids are random by design.
_IGNORED_MIME = {
    "application/vnd.nbseal.progress+json",
    "application/vnd.nbseal.lock+json",
    "application/vnd.nbseal.unsealed+json",
    "application/vnd.jupyter.widget-view+json",
}
_NBSEAL_MIME = {mime for mime in _IGNORED_MIME if "nbseal" in mime}
_IMAGE_MIME = ("image/png", "image/jpeg", "image/gif")


@dataclass(frozen=True)
class Sanitizer:
    pattern: re.Pattern[str]
    replacement: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replacement, text)


def _sanitizer(regex: str, replacement: str) -> Sanitizer:
    return Sanitizer(re.compile(regex, re.MULTILINE), replacement)


DEFAULT_SANITIZERS = (
    _sanitizer(r"0x[0-9a-fA-F]{6,16}", "0xADDRESS"),
    _sanitizer(r"^(CPU times|Wall time):.*$", r"\1: TIMING"),
    _sanitizer(
        r"^[\d.]+ (?:ns|µs|us|ms|s) ± [\d.]+ (?:ns|µs|us|ms|s) per loop .*$", "TIMEIT RESULT"
    ),
)


def load_sanitizers(path: Path) -> list[Sanitizer]:
    """Read regex sanitisers in nbval's format: sections with ``regex:`` and ``replace:``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, configparser.Error) as exc:
        raise NotebookError(
            f"cannot read the sanitiser file {path}: {exc}",
            hint="write sections like [date]\\nregex: \\d{4}-\\d{2}-\\d{2}\\nreplace: DATE",
        ) from exc
    found = []
    for name in parser.sections():
        section = parser[name]
        if "regex" not in section:
            raise NotebookError(f"section [{name}] of {path} has no regex: line")
        try:
            found.append(_sanitizer(section["regex"], section.get("replace", "")))
        except re.error as exc:
            raise NotebookError(f"section [{name}] of {path}: bad regex ({exc})") from exc
    return found


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _clean(text: str, sanitizers: tuple[Sanitizer, ...] | list[Sanitizer]) -> str:
    for sanitizer in sanitizers:
        text = sanitizer.apply(text)
    return text


def normalise_outputs(
    outputs: list[dict[str, Any]],
    sanitizers: tuple[Sanitizer, ...] | list[Sanitizer],
    *,
    images: bool = False,
) -> list[tuple[str, str]]:
    """Outputs as (kind, comparable text); consecutive streams of one name merged.

    Images are left out unless ``images`` (as nbval does without nbdime):
    pixels depend on fonts and renderers beyond the environment's lock.
    """
    result: list[tuple[str, str]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            name = f"stream:{output.get('name', 'stdout')}"
            text = "".join(
                line
                for line in _text(output.get("text", "")).splitlines(keepends=True)
                if not line.startswith("nbseal: ")  # the kernel's own notes
            )
            if not text:
                continue
            if result and result[-1][0] == name:
                result[-1] = (name, result[-1][1] + text)
            else:
                result.append((name, text))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if any(mime in data for mime in _NBSEAL_MIME):
                continue  # one of nbseal's own displays
            for mime in sorted(data):
                if mime in _IGNORED_MIME or (mime in _IMAGE_MIME and not images):
                    continue
                result.append((f"data:{mime}", _normal_value(mime, data[mime], sanitizers)))
        elif kind == "error":
            evalue = _clean(str(output.get("evalue", "")), sanitizers)
            result.append(("error", f"{output.get('ename', '')}: {evalue}"))
    for index, (kind, text) in enumerate(result):
        if kind.startswith("stream:"):
            result[index] = (kind, _clean(text, sanitizers))
    return result


def _normal_value(
    mime: str, value: Any, sanitizers: tuple[Sanitizer, ...] | list[Sanitizer]
) -> str:
    if mime in _IMAGE_MIME:
        return _text(value).replace("\n", "")
    if mime.endswith("json") or not isinstance(value, (str, list)):
        return _clean(json.dumps(value, sort_keys=True, indent=1), sanitizers)
    text = _text(value)
    if mime == "text/html":
        text = re.sub(r">\s+<", "><", re.sub(r"\s+", " ", text)).strip()
    return _clean(text, sanitizers)


def diff_outputs(expected: list[tuple[str, str]], actual: list[tuple[str, str]]) -> list[str]:
    """A readable account of how ``actual`` differs from ``expected``; empty when equal."""
    if expected == actual:
        return []
    lines: list[str] = []
    kinds_expected = [kind for kind, _ in expected]
    kinds_actual = [kind for kind, _ in actual]
    if kinds_expected != kinds_actual:
        lines.append(f"outputs differ: stored {kinds_expected}, got {kinds_actual}")
    for (kind, old), (new_kind, new) in zip(expected, actual, strict=False):
        if kind != new_kind or old == new:
            continue
        mime = kind.removeprefix("data:")
        if mime in _IMAGE_MIME:
            lines.append(f"{kind}: image differs ({_pixel_difference(old, new)})")
            continue
        lines.append(f"{kind}:")
        lines.extend(
            line.rstrip("\n")
            for line in difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                "stored",
                "now",
                n=2,
            )
        )
    return lines or ["outputs differ"]


def _pixel_difference(old: str, new: str) -> str:
    """The share of pixels that differ, when Pillow can decode both images."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return "install Pillow to measure how many pixels differ"
    try:
        first = Image.open(io.BytesIO(base64.b64decode(old))).convert("RGBA")
        second = Image.open(io.BytesIO(base64.b64decode(new))).convert("RGBA")
    except Exception as exc:
        return f"cannot decode: {exc}"
    if first.size != second.size:
        return f"size {first.size[0]}x{first.size[1]} became {second.size[0]}x{second.size[1]}"
    # A pixel differs when any of its channels does: the maximum over the bands.
    bands = ImageChops.difference(first, second).split()
    strongest = bands[0]
    for band in bands[1:]:
        strongest = ImageChops.lighter(strongest, band)
    changed = sum(strongest.histogram()[1:])
    total = first.size[0] * first.size[1]
    return f"{changed} of {total} pixels differ ({100 * changed / max(total, 1):.2f}%)"
