"""Why a cell did not reproduce: a cause and one line of evidence, for ``nbseal verify``.

Pure functions over a cell's source, the sources before it and its outputs.
The causes, in the order they are looked for:

- ``failed environment``: the cell's environment could not be built or
  started (the first cell tells the root cause, later ones point to it);
- ``missing data``: a file the cell opens is not there (name it, and how to
  declare it);
- ``error``: the re-run raised where the stored cell did not, or another
  error, or the stored cell raised and the re-run did not;
- ``nondeterminism``: the cell draws unseeded random numbers, reads the
  clock, times itself, prints ids, hashes or a set's order;
- ``environment drift``: new or changed warnings, numbers that differ only in
  late digits, version numbers, reprs of library objects that changed form;
- ``differs``: none of these; the diff says how.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nbseal import errors
from nbseal.adopt.imports import distribution_for

__all__ = [
    "DIFFERS",
    "DRIFT",
    "ERROR",
    "FAILED_ENVIRONMENT",
    "MISSING_DATA",
    "NONDETERMINISM",
    "Explanation",
    "explain_difference",
    "explain_error",
]

FAILED_ENVIRONMENT = "failed environment"
MISSING_DATA = "missing data"
ERROR = "error"
NONDETERMINISM = "nondeterminism"
DRIFT = "environment drift"
DIFFERS = "differs"


@dataclass(frozen=True)
class Explanation:
    cause: str
    evidence: str
    hint: str = ""


# -- errors -------------------------------------------------------------------
_MISSING_FILE = (
    re.compile(r"No such file or directory: '([^']+)'"),
    re.compile(r"File b?'?([^'\s]+?)'? does not exist"),
)
_ENVIRONMENT_ERRORS = (errors.UvError, errors.BuildError, errors.KernelStartError)


def _environment_error(ename: str) -> bool:
    cls = getattr(errors, ename, None)
    return isinstance(cls, type) and issubclass(cls, _ENVIRONMENT_ERRORS)


def _missing_path(ename: str, evalue: str) -> str | None:
    if ename not in ("FileNotFoundError", "OSError", "IOError"):
        return None
    for pattern in _MISSING_FILE:
        found = pattern.search(evalue)
        if found:
            return found.group(1)
    return None


_NO_MODULE = re.compile(r"^No module named '([\w.]+)'")


def _missing_module(ename: str, evalue: str) -> str | None:
    if ename not in ("ModuleNotFoundError", "ImportError"):
        return None
    found = _NO_MODULE.match(evalue)
    return found.group(1) if found else None


def explain_error(
    ename: str,
    evalue: str,
    *,
    stored: str | None = None,
    first_failure: int | None = None,
    notebook: str = "NOTEBOOK",
) -> Explanation:
    """Why the re-run raised ``ename: evalue``; ``stored`` is the stored cell's error, if any.

    ``first_failure`` is the cell that first told an environment's failure.
    """
    raised = f"{ename}: {evalue}"
    if _environment_error(ename):
        if ename == errors.EnvironmentFailedError.__name__ and first_failure is not None:
            return Explanation(FAILED_ENVIRONMENT, f"not built again: see cell {first_failure}")
        return Explanation(FAILED_ENVIRONMENT, raised)
    path = _missing_path(ename, evalue)
    if path is not None:
        folder = path.rsplit("/", 1)[0] if "/" in path else "."
        return Explanation(
            MISSING_DATA,
            f"the re-run cannot open {path!r} ({raised})",
            hint=f"declare it: `nbseal data add {notebook} {path}`, or `#seal share {folder}` "
            "for a folder next to the notebook",
        )
    module = _missing_module(ename, evalue)
    if stored is None and module is not None:
        # sktime's soft dependencies, iminuit.minimize's scipy: a library
        # imports it, no cell does, so `nbseal adopt` could not know.
        distribution, _ = distribution_for(module.split(".")[0])
        return Explanation(
            ERROR,
            f"{raised} (the stored cell did not raise)",
            hint=f"the environment lacks {module}: add {distribution} to the cell's "
            "`#seal env` line",
        )
    if stored is None:
        return Explanation(ERROR, f"{raised} (the stored cell did not raise)")
    return Explanation(ERROR, f"{raised}, where the stored cell raised {stored}")


# -- nondeterminism from the source ----------------------------------------------
@dataclass(frozen=True)
class _Random:
    """Calls that draw from one generator, and the calls that seed it."""

    name: str
    draws: re.Pattern[str]
    seeds: re.Pattern[str]


_ANY_SEED = r"|\b(?:seed_everything|set_seed|set_random_seed)\(\s*[^)\s]"
_RANDOM = (
    _Random(
        "numpy",
        re.compile(
            r"\b(?:np|numpy)\.random\.(?!seed\b|default_rng\b|RandomState\b|Generator\b"
            r"|SeedSequence\b|get_state\b|set_state\b|PCG64\b|MT19937\b)\w+\("
            r"|\b(?:np|numpy)\.random\.(?:default_rng|RandomState)\(\s*\)"
            r"|\btrain_test_split\((?![^)]*random_state)|\.sample\((?![^)]*random_state)"
        ),
        re.compile(r"\b(?:np|numpy)\.random\.seed\(\s*[^)\s]" + _ANY_SEED),
    ),
    _Random(
        "random",
        re.compile(r"(?<![\w.])random\.(?!seed\b|Random\b|getstate\b|setstate\b)\w+\("),
        re.compile(r"(?<![\w.])random\.seed\(\s*[^)\s]" + _ANY_SEED),
    ),
    _Random(
        "torch",
        re.compile(
            r"\btorch\.(?:rand|randn|randint|randperm|rand_like|randn_like|randint_like"
            r"|normal|bernoulli|multinomial)\("
        ),
        re.compile(r"\btorch\.(?:random\.)?manual_seed\(" + _ANY_SEED),
    ),
    _Random(
        "tensorflow",
        re.compile(r"\btf\.random\.(?!set_seed\b)\w+\("),
        re.compile(r"\btf\.random\.set_seed\(" + _ANY_SEED),
    ),
)
# What no seed makes repeatable: the clock, timings, ids, hashes, progress bars.
_UNREPEATABLE = (
    (re.compile(r"^\s*%%?timeit\b"), "%timeit measures time"),
    (re.compile(r"^\s*%%?time\b"), "%time measures time"),
    (
        re.compile(r"\btime\.(?:time|perf_counter|monotonic|process_time|ctime|localtime)\("),
        "reads the clock",
    ),
    (re.compile(r"\b(?:datetime|date|Timestamp)\.(?:now|today|utcnow)\("), "reads the clock"),
    (re.compile(r"\buuid\.?uuid[14]\("), "makes a random UUID"),
    (re.compile(r"(?<![\w.])id\("), "prints an object's id (a memory address)"),
    (re.compile(r"(?<![\w.])hash\("), "hash() of a str differs in every process"),
    (re.compile(r"\bos\.(?:getpid|urandom)\(|\bsecrets\."), "reads the process or the OS"),
    (re.compile(r"\btqdm\b"), "a progress bar prints rates and times"),
)


def _code_lines(source: str) -> list[str]:
    """The source's lines, comments cut (roughly: a '#' in a string cuts too)."""
    return [
        line.split("#", 1)[0] if not line.lstrip().startswith("%") else line
        for line in source.splitlines()
    ]


def _seeded(generator: _Random, before: str) -> bool:
    return bool(generator.seeds.search(before))


def _unseeded_draw(source: str, earlier: Sequence[str]) -> str | None:
    """Evidence of an unseeded random draw in ``source``, with ``earlier`` cells' code before it."""
    text_before = "\n".join("\n".join(_code_lines(s)) for s in earlier)
    for line in _code_lines(source):
        for generator in _RANDOM:
            found = generator.draws.search(line)
            if found and not _seeded(generator, text_before + "\n" + line[: found.start()]):
                return (
                    f"unseeded random numbers: `{line.strip()}` (no {generator.name} seed before)"
                )
        text_before += "\n" + line
    return None


def _nondeterministic_source(source: str, earlier: Sequence[str]) -> str | None:
    drawn = _unseeded_draw(source, earlier)
    if drawn is not None:
        return drawn
    for line in _code_lines(source):
        for pattern, why in _UNREPEATABLE:
            if pattern.search(line):
                return f"`{line.strip()}`: {why}"
    return None


# -- environment drift from the outputs -----------------------------------------
_WARNING = re.compile(r"\b(\w+Warning): (.*)")
_VERSION = re.compile(r"\b\d+\.\d+\.\d+[\w.+-]*")
_BLANKS = re.compile(r"[ \t]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_REPR = re.compile(r"<[A-Za-z_][\w.]*[ :>]|^\s*[A-Z]\w*\(")
# matplotlib's default figure size (6.4x4.8 inches since 2.0, 6x4 before).
_FIGURE_SIZE = re.compile(r"Figure(?:\(| size )(\d+x\d+)")


def _warnings(outputs: Sequence[tuple[str, str]]) -> set[str]:
    found: set[str] = set()
    for kind, text in outputs:
        if kind == "stream:stderr":
            found.update(f"{name}: {message.strip()}" for name, message in _WARNING.findall(text))
    return found


def _changed_pair(old: str, new: str) -> tuple[str, str] | None:
    """The first line removed and the first line added from ``old`` to ``new``."""
    removed = added = None
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- ") and removed is None:
            removed = line[2:]
        elif line.startswith("+ ") and added is None:
            added = line[2:]
    return (removed, added) if removed is not None and added is not None else None


def _close(old: str, new: str) -> bool:
    a, b = float(old), float(new)
    return abs(a - b) <= max(1e-12, 1e-3 * max(abs(a), abs(b)))


def _drift_in_text(old: str, new: str) -> str | None:
    if _VERSION.sub("V", old) == _VERSION.sub("V", new):
        pairs = zip(_VERSION.findall(old), _VERSION.findall(new), strict=True)
        changed = [(a, b) for a, b in pairs if a != b]
        if changed:
            return f"version numbers differ: {changed[0][0]} → {changed[0][1]}"
    # A table pads its columns to its widest number: the padding follows the digits.
    if _NUMBER.sub("N", _BLANKS.sub(" ", old)) == _NUMBER.sub("N", _BLANKS.sub(" ", new)):
        pairs = zip(_NUMBER.findall(old), _NUMBER.findall(new), strict=True)
        changed = [(a, b) for a, b in pairs if a != b]
        if changed and all(_close(a, b) for a, b in changed):
            return f"numbers differ only in late digits: {changed[0][0]} → {changed[0][1]}"
    pair = _changed_pair(old, new)
    if pair is None:
        return None
    sizes = [_FIGURE_SIZE.search(line) for line in pair]
    if sizes[0] and sizes[1] and sizes[0].group(1) != sizes[1].group(1):
        return f"matplotlib's figure size changed: {sizes[0].group(1)} → {sizes[1].group(1)}"
    # A form that changed, not only the numbers in it (those may be the notebook's own).
    reprs = _REPR.search(pair[0]) and _REPR.search(pair[1])
    if reprs and _NUMBER.sub("N", pair[0]) != _NUMBER.sub("N", pair[1]):
        return f"a library object's repr changed form: `{pair[0].strip()}` → `{pair[1].strip()}`"
    return None


def _drift(expected: Sequence[tuple[str, str]], actual: Sequence[tuple[str, str]]) -> str | None:
    before, after = _warnings(expected), _warnings(actual)
    if after - before:
        return f"new warning: {sorted(after - before)[0]}"
    if before - after:
        return f"a stored warning is gone: {sorted(before - after)[0]}"
    for (kind, old), (new_kind, new) in zip(expected, actual, strict=False):
        if kind == new_kind and old != new:
            found = _drift_in_text(old, new)
            if found:
                return found
    return None


def _reordered(expected: Sequence[tuple[str, str]], actual: Sequence[tuple[str, str]]) -> bool:
    """The same words and signs, in another order (a set of str prints so)."""
    if [k for k, _ in expected] != [k for k, _ in actual]:
        return False

    def items(text: str) -> list[str]:
        return sorted(re.findall(r"\w+|[^\w\s]", text))

    return all(
        items(old) == items(new) for (_, old), (_, new) in zip(expected, actual, strict=True)
    )


# A random id as a whole word: a uuid4() (or its .hex), or an IPython display id
# (16 random bytes in hex).
_UUID = re.compile(
    r"\b(?:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"|[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15})\b"
    r"|(?<=display_id=)[0-9a-f]{32}\b"
)


def _random_ids(
    expected: Sequence[tuple[str, str]], actual: Sequence[tuple[str, str]]
) -> str | None:
    """Evidence that only random ids differ (a display's, a div's uuid4)."""
    if [k for k, _ in expected] != [k for k, _ in actual]:
        return None
    pairs = [(old, new) for (_, old), (_, new) in zip(expected, actual, strict=True) if old != new]
    if not pairs or any(_UUID.sub("U", old) != _UUID.sub("U", new) for old, new in pairs):
        return None
    old, new = pairs[0]
    first = next(
        (a, b) for a, b in zip(_UUID.findall(old), _UUID.findall(new), strict=True) if a != b
    )
    return f"random ids differ: {first[0]} → {first[1]}"


# A date and time as programs print them: ISO 8601 (with "T" or a space),
# day/month/year, a time of day with seconds.
_CLOCK = re.compile(
    r"\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?"
    r"|\b\d\d?/\d\d?/\d\d(?:\d\d)?\b"
    r"|\b\d\d?:\d\d:\d\d(?:\.\d+)?\b"
)
_TIME_OF_DAY = re.compile(r"\d:\d\d:\d\d")


def _clock_readings(
    expected: Sequence[tuple[str, str]], actual: Sequence[tuple[str, str]]
) -> str | None:
    """Evidence that only dates and times differ, a time of day among them:
    when the cell ran, printed by it or by a library (a fit's summary)."""
    if [k for k, _ in expected] != [k for k, _ in actual]:
        return None
    pairs = [(old, new) for (_, old), (_, new) in zip(expected, actual, strict=True) if old != new]
    if not pairs or any(_CLOCK.sub("T", old) != _CLOCK.sub("T", new) for old, new in pairs):
        return None
    changed = [
        (a, b)
        for old, new in pairs
        for a, b in zip(_CLOCK.findall(old), _CLOCK.findall(new), strict=True)
        if a != b
    ]
    if not any(_TIME_OF_DAY.search(a) for a, _ in changed):
        return None  # dates alone may be data
    old, new = changed[0]
    return f"only dates and times differ (the clock when each run ran): {old} → {new}"


def explain_difference(
    source: str,
    earlier: Sequence[tuple[int, str]],
    expected: Sequence[tuple[str, str]],
    actual: Sequence[tuple[str, str]],
    *,
    stored_error: str | None = None,
) -> Explanation:
    """Why the normalised outputs ``actual`` differ from ``expected``.

    ``earlier`` holds the (cell number, source) of the code cells before this one;
    ``stored_error`` the stored cell's error when the re-run raised none.
    """
    if stored_error is not None:
        return Explanation(ERROR, f"the stored cell raised {stored_error}; the re-run did not")
    sources = [text for _, text in earlier]
    in_cell = _nondeterministic_source(source, sources)
    if in_cell is not None:
        return Explanation(NONDETERMINISM, in_cell)
    random_id = _random_ids(expected, actual)
    if random_id is not None:
        return Explanation(NONDETERMINISM, random_id)
    drift = _drift(expected, actual)
    if drift is not None:
        return Explanation(DRIFT, drift)
    clock = _clock_readings(expected, actual)
    if clock is not None:
        return Explanation(NONDETERMINISM, clock)
    if _reordered(expected, actual):
        return Explanation(NONDETERMINISM, "the same items in another order (a set's order varies)")
    for position, (number, text) in enumerate(earlier):
        drawn = _unseeded_draw(text, sources[:position])
        if drawn is not None:
            return Explanation(NONDETERMINISM, f"cell {number} draws {drawn}")
    for (kind, old), (new_kind, new) in zip(expected, actual, strict=False):
        pair = _changed_pair(old, new) if kind == new_kind else None
        if pair is not None:
            return Explanation(DIFFERS, f"{kind}: `{pair[0].strip()}` → `{pair[1].strip()}`")
    return Explanation(DIFFERS, f"stored {[k for k, _ in expected]}, got {[k for k, _ in actual]}")
