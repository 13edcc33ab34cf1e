"""What a notebook's cells import, and which distributions provide it.

Pure functions over cell sources. Code that Python 3 cannot parse (Python 2
notebooks, IPython magics) is read line by line instead, so an old notebook
still yields its imports. Import names become distribution names through
pipreqs' map (``pipreqs_mapping.txt``, Apache-2.0, taken unchanged from the
pipreqs wheel on PyPI: ``sklearn`` → ``scikit_learn``, ``PIL`` → ``Pillow``,
``yaml`` → ``PyYAML`` ...), then ``import_names_extra.txt`` for the few
common names it lacks (``cv2``, ``skimage``); a name neither lists is taken
as the distribution's own name, as pipreqs does.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from nbseal.streams import multiline

__all__ = [
    "Imported",
    "distribution_for",
    "drawn_by_tqdm",
    "imported_modules",
    "is_standard_library",
    "pip_installs",
    "string_literals",
]

# Modules Python 2 had in its standard library under names Python 3 dropped
# (2to3's rename table, plus the few modules it removed outright).
_PY2_STDLIB = frozenset(
    {
        "StringIO", "cStringIO", "cPickle", "__builtin__", "copy_reg", "Queue",
        "SocketServer", "ConfigParser", "repr", "FileDialog", "tkFileDialog",
        "SimpleDialog", "tkSimpleDialog", "tkColorChooser", "tkCommonDialog",
        "Dialog", "Tkdnd", "tkFont", "tkMessageBox", "ScrolledText", "Tkconstants",
        "Tix", "ttk", "Tkinter", "markupbase", "_winreg", "thread", "dummy_thread",
        "dbhash", "dumbdbm", "dbm", "gdbm", "xmlrpclib", "DocXMLRPCServer",
        "SimpleXMLRPCServer", "httplib", "htmlentitydefs", "HTMLParser", "Cookie",
        "cookielib", "BaseHTTPServer", "SimpleHTTPServer", "CGIHTTPServer",
        "commands", "UserString", "UserList", "UserDict", "urlparse", "robotparser",
        "urllib2", "anydbm", "sets", "md5", "sha", "new", "exceptions", "string",
        "sgmllib", "htmllib", "mimetools", "MimeWriter", "rfc822", "popen2",
        "imputil", "mutex", "statvfs", "compiler", "future_builtins",
    }
)  # fmt: skip

_MAGIC = re.compile(r"^\s*[%!]")
# Line magics that import a library themselves.
_MAGIC_IMPORTS = {
    "matplotlib": ("matplotlib",),
    "pylab": ("numpy", "matplotlib"),
}
_MAGIC_NAME = re.compile(r"^\s*%(\w+)")
_PIP_LINE = re.compile(r"^\s*(?:%pip|%conda|!\s*pip3?|!\s*python3? -m pip)\s+install\s+(.*)$")
_IMPORT_LINE = re.compile(r"^\s*import\s+([\w., \t]+)")
_FROM_LINE = re.compile(r"^\s*from\s+([\w.]+)\s+import\b")
_QUOTED = re.compile(r"""(?:'([^'\\\n]{1,300})'|"([^"\\\n]{1,300})")""")


@dataclass(frozen=True)
class Imported:
    """A top-level module a cell imports; ``cell`` is the 1-based code cell."""

    module: str
    cell: int


def _python_only(source: str) -> str:
    """The cell without IPython's magics and shell lines (kept as blank lines)."""
    if source.lstrip().startswith("%%"):
        return ""  # a cell magic: its body is not Python (%%bash, %%html ...)
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def _parsed(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python_only(source))
    except (SyntaxError, ValueError):
        return None


def _modules_in(source: str) -> list[str]:
    tree = _parsed(source)
    found: list[str] = []
    for line in source.splitlines():
        if (magic := _MAGIC_NAME.match(line)) is not None:
            found += _MAGIC_IMPORTS.get(magic.group(1), ())
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append(node.module)
        return [name.split(".")[0] for name in found]
    # Python 2 or damaged code: the import statements, line by line.
    for line in _python_only(source).splitlines():
        if match := _FROM_LINE.match(line):
            found.append(match.group(1))
        elif match := _IMPORT_LINE.match(line):
            found += [part.split(" as ")[0].strip() for part in match.group(1).split(",")]
    return [name.split(".")[0] for name in found if name and not name.startswith(".")]


def imported_modules(sources: Iterable[str]) -> list[Imported]:
    """Every top-level module the code cells import, first use first, each once."""
    seen: dict[str, Imported] = {}
    for cell, source in enumerate(sources, start=1):
        for module in _modules_in(source):
            if module.isidentifier() and module not in seen:
                seen[module] = Imported(module, cell)
    return list(seen.values())


def pip_installs(sources: Iterable[str]) -> list[str]:
    """Requirements the cells install themselves (``%pip install x``, ``!pip install x``)."""
    found: list[str] = []
    for source in sources:
        for line in source.splitlines():
            match = _PIP_LINE.match(line)
            if match is None:
                continue
            for word in match.group(1).split():
                if word.startswith("-") or "$" in word or "{" in word:
                    continue  # options and shell variables
                word = word.strip("'\"")
                if word and word not in found:
                    found.append(word)
    return found


def is_standard_library(module: str) -> bool:
    return module in sys.stdlib_module_names or module in _PY2_STDLIB or module == "__future__"


@functools.cache
def _import_map() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for name in ("pipreqs_mapping.txt", "import_names_extra.txt"):  # the first says first
        text = resources.files("nbseal.adopt").joinpath(name).read_text()
        for line in text.splitlines():
            module, sep, distribution = line.strip().partition(":")
            if sep and module and distribution and not module.startswith("#"):
                mapping.setdefault(module, distribution)
    return mapping


def distribution_for(module: str) -> tuple[str, bool]:
    """The distribution that provides ``module``, and whether the map said so."""
    mapped = _import_map().get(module)
    if mapped is not None:
        return mapped.replace("_", "-"), True
    return module.replace("_", "-"), False


def _joined(node: ast.Call) -> str | None:
    """``os.path.join('data', 'x.csv')`` with constant parts, as one path."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name != "join" or not node.args:
        return None
    parts = [a.value for a in node.args if isinstance(a, ast.Constant)]
    if len(parts) != len(node.args) or not all(isinstance(p, str) for p in parts):
        return None
    return "/".join(str(p).strip("/") for p in parts)


def string_literals(sources: Iterable[str]) -> list[tuple[str, int]]:
    """Every string constant of the cells (and constant path joins), with its cell."""
    found: list[tuple[str, int]] = []
    for cell, source in enumerate(sources, start=1):
        tree = _parsed(source)
        if tree is None:
            found += [(a or b, cell) for a, b in _QUOTED.findall(_python_only(source))]
            continue
        in_order = sorted(
            (n for n in ast.walk(tree) if isinstance(n, (ast.Constant, ast.Call))),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in in_order:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if len(node.value) <= 300 and "\n" not in node.value:
                    found.append((node.value, cell))
            elif isinstance(node, ast.Call) and (joined := _joined(node)) is not None:
                found.append((joined, cell))
    return found


# tqdm's bar as it prints it: "100%|██████████| 5000/5000 [00:06<00:00, ...".
# A match starts only at a percentage's first digit: tried from every digit of
# a long number, the pattern took seconds per 40,000 digits, quadratically.
_TQDM_BAR = re.compile(r"(?<!\d)\d{1,3}%\|[^|\n]*\| *[\d.]+[kMGTPEZY]?/[\d.]+[kMGTPEZY]? \[")


def drawn_by_tqdm(notebook: Any) -> int | None:
    """The first code cell (1-based) whose stored streams show a tqdm progress bar.

    A library the cell calls may draw it with tqdm only when tqdm is
    installed (emcee's ``progress=True``), so no import names it.
    """
    code = [cell for cell in notebook["cells"] if cell.get("cell_type") == "code"]
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                continue
            if _TQDM_BAR.search(multiline(output.get("text", ""))):
                return number
    return None
