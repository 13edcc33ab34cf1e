"""Comparing a cell's stored outputs with fresh ones, after normalisation.

Pure functions over nbformat output dicts. What cannot be reproduced by
design is normalised away before comparing: execution counts, memory
addresses, timings printed by ``%time``/``%timeit``, nbseal's own progress
and lock displays, and widget model ids. Images are compared only on request.
In a cell that shows an image, the text reprs of matplotlib's objects beside
it (``<Figure size 432x288 with 1 Axes>``, ``[<matplotlib.lines.Line2D at
0x...>]``, ``Text(0.5, 1.0, 'x')``) are left out, as they name the figure
rather than show it; a figure's own text becomes a mark that a figure is
shown, and matplotlib's warning that ``fig.show()`` cannot show it (the
inline backend shows it anyway) is left out. An error is its name and value,
without the paths and line numbers of the machine that raised it. Users add
regex sanitisers in nbval's file format.
"""

from __future__ import annotations

import base64
import configparser
import difflib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbseal.errors import NotebookError
from nbseal.streams import as_displayed, multiline

__all__ = [
    "DEFAULT_SANITIZERS",
    "Sanitizer",
    "author_folder",
    "author_folder_sanitizer",
    "diff_outputs",
    "figure_text",
    "has_image",
    "load_sanitizers",
    "normal_error",
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
_DESCRIBE_MIME = "application/vnd.nbseal.describe+json"
# Fields of a `#seal describe` row that belong to the machine or the session
# (whether a kernel is warm, its memory), not the notebook.
_MACHINE_FIELDS = ("store key", "python", "state")
_IMAGE_MIME = ("image/png", "image/jpeg", "image/gif")
# What marks a cell as showing a figure (an SVG is text, but a figure all the same).
_FIGURE_MIME = (*_IMAGE_MIME, "image/svg+xml")
# The text reprs of matplotlib's figures, axes and artists, old and new forms.
_ARTIST = re.compile(
    r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>"
    r"|<\w*Axes\w*(?::[^<>\n]*)?>"  # <Axes: >, <AxesSubplot:xlabel='x'>
    r"|<(?:matplotlib|mpl_toolkits|seaborn)\.[\w.]+(?: object)? at 0x[0-9a-fA-F]+>"
    r"|<\w+ object of \d+ artists>"  # <BarContainer object of 3 artists>
    r"|\b(?:Text|Annotation)\(-?[\d.e+-]+, ?-?[\d.e+-]+, ?(?:'[^'\n]*'|\"[^\"\n]*\")\)"
)
# matplotlib's warning when a cell calls fig.show() under the inline backend
# of ipykernel < 6: the figure is shown at the cell's end all the same, and
# whether the warning comes depends on the kernel's backend module, not on
# the notebook. A warning prints its message, then its source line indented.
_NON_GUI_WARNING = re.compile(
    r"^[^\n]*UserWarning: Matplotlib is currently using \S+, which is a non-GUI backend, "
    r"so cannot show the figure\.\n(?:  [^\n]*\n)?",
    re.MULTILINE,
)
# What may surround reprs in a list, a tuple or an array of axes.
_ARTIST_GLUE = re.compile(r"array|dtype=object|[\s\[\](),]")


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
    # Where a warning was raised: "path:line: " before "SomeWarning: message"
    # (Python's warnings.formatwarning). A library's file and line move with
    # its version and its install (the author's checkout, a conda folder,
    # site-packages here), as an error's traceback does; the category and the
    # message are compared.
    _sanitizer(r"^[^\n]*?:\d+: (?=[A-Z]\w*Warning: )", "WARNING: "),
    # An object's address printed without its 0x, as some C++ and Cython
    # wrappers do: "<ValueView of Minuit at 7fcf91b3ca98>".
    _sanitizer(r"(?<= at )[0-9a-fA-F]{8,16}(?=>)", "0xADDRESS"),
    # The kernels' working directory: a scratch folder nbseal makes anew for each
    # session (runtime_dirs.make_runtime_dir: "nbseal-" and 8 random characters),
    # bound at its host path, so what a cell prints of it differs between runs.
    # A match starts only where a path can (as in author_folder): tried from
    # every "/", a long path-like output took minutes.
    _sanitizer(
        r"(?<![^\s'\"(=:])(?:/[^\s/'\"]+)*/(?:nbseal-run-[a-z0-9_]{8}/)?nbseal-[a-z0-9_]{8}/work"
        r"(?![\w.-])",
        "WORKDIR",
    ),
    # Where the environment's packages are installed: the author's conda or
    # venv folder (and its Python's version), nbseal's store entry here. A
    # warning names the file that raised it, an object's repr its module's
    # file. Only POSIX paths; a Windows one keeps its backslashes.
    _sanitizer(
        r"(?<![^\s'\"(=:])(?:/[^\s/'\"]+)*/lib/(?:python|pypy)\d(?:\.\d+)?/(?:site|dist)-packages/",
        "SITE-PACKAGES/",
    ),
    # A tqdm progress bar's clock: "[00:06<00:00, 815.49it/s]" (elapsed,
    # remaining, rate; "?" before the first step, "s/it" when slow, a unit
    # such as "MB/s" with unit_scale). Its count and bar stay compared.
    _sanitizer(
        r"\[(?:\d+:)?\d\d:\d\d<(?:(?:\d+:)?\d\d:\d\d|\?), *"
        r"(?:\?|[\d.]+ ?[kMGTPEZY]?)[A-Za-z]*/[A-Za-z]+",
        "[ELAPSED<REMAINING, RATE",
    ),
    _sanitizer(r"^(CPU times|Wall time):.*$", r"\1: TIMING"),
    _sanitizer(
        r"^[\d.]+ (?:ns|µs|us|ms|s) ± [\d.]+ (?:ns|µs|us|ms|s) per loop .*$", "TIMEIT RESULT"
    ),
)
# What may follow a folder's path in a printed path, a repr or a message.
_PATH_END = r"(?=$|[/\s'\"),:\]])"


def author_folder(texts: Iterable[str], folder_name: str) -> str | None:
    """The notebook's folder on its author's machine, as the stored outputs print it.

    A path printed whole (``!pwd``) or with more after it (``importing
    notebook from /Users/ada/project/notebooks/pkg/nb.ipynb``) that names
    ``folder_name``, the notebook's folder here (a clone keeps the project's
    folder names); the components before it must hold no spaces, which the
    folder's own name may. The path printed most often wins; None if none is.
    """
    if not folder_name or "/" in folder_name:
        return None
    pattern = re.compile(
        r"(?<![^\s'\"(=:])((?:/[^\s/'\"]+)*/" + re.escape(folder_name) + ")" + _PATH_END,
        re.MULTILINE,
    )
    found = Counter(match for text in texts for match in pattern.findall(text))
    return found.most_common(1)[0][0] if found else None


def author_folder_sanitizer(folder: str) -> Sanitizer:
    """Replaces ``folder`` (from :func:`author_folder`) as the scratch working directory is."""
    return _sanitizer(re.escape(folder) + _PATH_END, "WORKDIR")


# Where an error was raised: IPython's cell file names, paths, line numbers.
_ERROR_PLACES = (
    _sanitizer(r"<ipython-input-\d+-[0-9a-f]+>|/tmp/ipykernel_\d+/\d+\.py", "<cell>"),
    _sanitizer(r"(?:/[\w.+-]+)+/", ""),
    _sanitizer(r"\bline \d+", "line N"),
)


def load_sanitizers(path: Path) -> list[Sanitizer]:
    """Read regex sanitisers in nbval's format: sections with ``regex:`` and ``replace:``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, configparser.Error) as exc:
        raise NotebookError.sanitiser_unreadable(path, str(exc)) from exc
    found = []
    for name in parser.sections():
        section = parser[name]
        if "regex" not in section:
            raise NotebookError.sanitiser_without_regex(path, name)
        try:
            found.append(_sanitizer(section["regex"], section.get("replace", "")))
        except re.error as exc:
            raise NotebookError.sanitiser_bad_regex(path, name, str(exc)) from exc
    return found


def _clean(text: str, sanitizers: Sequence[Sanitizer]) -> str:
    for sanitizer in sanitizers:
        text = sanitizer.apply(text)
    return text


def has_image(outputs: list[dict[str, Any]]) -> bool:
    """Whether ``outputs`` show a figure (PNG, JPEG, GIF or SVG)."""
    return any(mime in o.get("data", {}) for o in outputs for mime in _FIGURE_MIME)


def figure_text(text: str) -> bool:
    """Whether ``text`` is only matplotlib reprs (one, or a list, tuple or array of them)."""
    return bool(_ARTIST.search(text)) and not _ARTIST_GLUE.sub("", _ARTIST.sub("", text))


def normal_error(ename: str, evalue: str, sanitizers: Sequence[Sanitizer] = ()) -> str:
    """An error as compared: its name and value, without the places it names."""
    return f"{ename}: {_clean(_clean(evalue, _ERROR_PLACES), sanitizers)}"


def normalise_outputs(
    outputs: list[dict[str, Any]],
    sanitizers: tuple[Sanitizer, ...] | list[Sanitizer],
    *,
    images: bool = False,
    figures: bool = False,
) -> list[tuple[str, str]]:
    """Outputs as (kind, comparable text); consecutive streams of one name merged
    and shown as a frontend shows them (:func:`as_displayed`).

    Images are left out unless ``images`` (as nbval does without nbdime):
    pixels depend on fonts and renderers beyond the environment's lock. With
    ``figures`` (the cell shows an image, stored or fresh), matplotlib's text
    reprs are left out; the one beside an image becomes a ``figure`` mark, and
    matplotlib's "non-GUI backend, so cannot show the figure" warning is left
    out of stderr.
    """
    result: list[tuple[str, str]] = []
    streams: dict[int, list[str]] = {}  # a merged stream's index -> its pieces, joined once
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            name = f"stream:{output.get('name', 'stdout')}"
            text = "".join(
                line
                for line in multiline(output.get("text", "")).splitlines(keepends=True)
                if not line.startswith("nbseal: ")  # the kernel's own notes
            )
            if figures and name == "stream:stderr":
                text = _NON_GUI_WARNING.sub("", text)
            if not text:
                continue
            if result and result[-1][0] == name:
                streams[len(result) - 1].append(text)
            else:
                result.append((name, ""))
                streams[len(result) - 1] = [text]
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if any(mime in data for mime in _NBSEAL_MIME):
                continue  # one of nbseal's own displays
            if _DESCRIBE_MIME in data:
                # `#seal describe`: what the environments are, not where this
                # machine keeps them or which patch release of Python runs them.
                result.append(("describe", _describe_essence(data[_DESCRIBE_MIME])))
                continue
            for mime in sorted(data):
                if mime in _IGNORED_MIME or (mime in _IMAGE_MIME and not images):
                    continue
                if figures and mime == "text/plain" and figure_text(multiline(data[mime])):
                    if not images and any(image in data for image in _FIGURE_MIME):
                        # The figure's text stands for it: that a figure is shown still counts.
                        result.append(("figure", "a figure (compared with --compare-images)"))
                    continue
                result.append((f"data:{mime}", _normal_value(mime, data[mime], sanitizers)))
        elif kind == "error":
            error = normal_error(str(output.get("ename", "")), str(output.get("evalue", "")))
            result.append(("error", _clean(error, sanitizers)))
    for index, texts in streams.items():
        result[index] = (result[index][0], _clean(as_displayed("".join(texts)), sanitizers))
    return result


def _describe_essence(rows: Any) -> str:
    """``#seal describe``'s rows without the fields that name this machine's store."""
    if not isinstance(rows, list):
        return json.dumps(rows, sort_keys=True, indent=1)
    kept = [
        {k: v for k, v in row.items() if k not in _MACHINE_FIELDS} if isinstance(row, dict) else row
        for row in rows
    ]
    return json.dumps(kept, sort_keys=True, indent=1)


def _normal_value(
    mime: str, value: Any, sanitizers: tuple[Sanitizer, ...] | list[Sanitizer]
) -> str:
    if mime in _IMAGE_MIME:
        return multiline(value).replace("\n", "")
    if mime.endswith("json") or not isinstance(value, (str, list)):
        return _clean(json.dumps(value, sort_keys=True, indent=1), sanitizers)
    text = multiline(value)
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
