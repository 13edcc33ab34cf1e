"""Requirements a project declares in its own files, next to a notebook or above it.

The nearest folder (from the notebook's own up to the project's root) that
holds any of requirements*.txt, pyproject.toml, environment.yml, Pipfile,
setup.cfg or setup.py is the notebook's project; each file there is read
without running anything (setup.py is parsed, not executed).
"""

from __future__ import annotations

import ast
import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from nbseal._toml import tomllib

__all__ = [
    "SKIPPED_FOLDERS",
    "Declared",
    "canonical_name",
    "declared_requirements",
    "docs_requirements",
    "is_a_project",
    "project_root",
    "requirements_of_tests",
]

# Folders below a project's root that hold no file of the project's own.
SKIPPED_FOLDERS = frozenset(
    {".git", "site-packages", "node_modules", ".tox", ".venv", "venv", "build", "_build", "dist"}
)
# Requirement files for development, tests or docs are not what a notebook runs with.
_SIDE_FILES = re.compile(r"(dev|test|doc|lint|ci|build)", re.IGNORECASE)
# Frontends and notebook tooling: the sandbox runs a kernel, never these.
_FRONTENDS = frozenset(
    {"jupyter", "jupyterlab", "notebook", "nbconvert", "voila", "jupyter-contrib-nbextensions"}
)
# What builds documentation, not what its notebooks run with.
_DOC_TOOLS = re.compile(
    r"^(sphinx.*|.*-sphinx-theme|.*_sphinx_theme|nbsphinx.*|myst-.*|myst_.*|jupyter[-_]sphinx"
    r"|numpydoc|recommonmark|m2r2?|docutils|pandoc|pypandoc|furo|jupyter-book)$",
    re.IGNORECASE,
)
# What runs tests, not what the notebooks they execute run with.
_TEST_TOOLS = re.compile(
    r"^(pytest.*|nose.*|coverage.*|codecov|coveralls|tox|mock|flake8.*|pylint|mypy|black|isort"
    r"|pre-commit|nbval|nbconvert|nbformat|nbclient|papermill|testbook|ipykernel|jupyter-client)$",
    re.IGNORECASE,
)
# The extras (setup.py, setup.cfg, pyproject.toml) that hold the test requirements.
_TEST_EXTRAS = re.compile(r"^(tests?|testing)$", re.IGNORECASE)
# conda's names for things that are not PyPI packages.
_CONDA_ONLY = frozenset({"python", "pip", "conda", "nb_conda", "nb_conda_kernels", "mkl"})
# conda-forge names of packages PyPI knows under another name.
_CONDA_TO_PYPI = {
    "pytables": "tables",
    "matplotlib-base": "matplotlib",
    "pytorch": "torch",
    "py-opencv": "opencv-python",
    "python-graphviz": "graphviz",
    "pyqt": "PyQt5",
}


@dataclass(frozen=True)
class Declared:
    """One requirement a project file declares, and the file (relative to the root)."""

    requirement: str
    source: str


def project_root(notebook_dir: Path, *, limit: int = 3) -> Path:
    """The enclosing git work tree's top, else the notebook's folder's parent
    (``docs/tutorials/x.ipynb`` and ``docs/environment.yml`` are one project)."""
    here = notebook_dir.resolve()
    for folder in [here, *here.parents][: limit + 1]:
        if (folder / ".git").exists():
            return folder
    return here.parent


def is_a_project(folder: Path) -> bool:
    """Whether ``folder`` is a project's top: a git work tree's, or one holding project files.

    What :func:`project_root` gives outside git is only the notebook's
    folder's parent (a home folder, a folder of unrelated clones): the docs
    found below it are a project's own only when it is one.
    """
    return (folder / ".git").exists() or bool(_files_in(folder))


def _usable(text: str) -> str | None:
    text = text.split("#", 1)[0].strip()
    if not text or text.startswith("-") or ("://" in text and "@" not in text):
        return None
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None
    if requirement.name.lower() in _FRONTENDS:
        return None
    return str(requirement)


def canonical_name(requirement: str) -> str:
    """A requirement's distribution name as the index compares it (lower case, ``-``)."""
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _requirements_txt(path: Path) -> list[str]:
    return [r for line in path.read_text(errors="replace").splitlines() if (r := _usable(line))]


def _pyproject(path: Path) -> list[str]:
    data = tomllib.loads(path.read_text(errors="replace"))
    found = [r for item in data.get("project", {}).get("dependencies", []) if (r := _usable(item))]
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    for name, spec in poetry.items():
        if name.lower() == "python":
            continue
        version = spec if isinstance(spec, str) else spec.get("version", "*")
        # Poetry's ^ and ~ ranges have no PEP 440 spelling; the name is what counts here.
        plain = version if re.fullmatch(r"[=<>!~]=?[\w.*]+", version or "") else ""
        if r := _usable(f"{name}{plain}"):
            found.append(r)
    return found


def _conda_spec(text: str) -> str | None:
    name, _, version = text.strip().partition("=")
    version = version.split("=")[0]  # drop a build string (pkg=1.2=py36_0)
    if name.lower() in _CONDA_ONLY or "::" in name:
        return None
    name = _CONDA_TO_PYPI.get(name.lower(), name)
    if not version or version == "*":
        return _usable(name)
    if re.fullmatch(r"[\d.]+", version):
        return _usable(f"{name}=={version}.*" if version.count(".") < 2 else f"{name}=={version}")
    return _usable(f"{name}{version}")


def _environment_yml(path: Path) -> list[str]:
    """conda's environment file: its dependencies and their ``pip:`` list (no YAML library)."""
    found: list[str] = []
    in_deps = in_pip = False
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps, in_pip = line.startswith("dependencies:"), False
            continue
        item = line.strip()
        if not in_deps or not item.startswith("- "):
            continue
        value = item[2:].strip().strip("'\"")
        if value.rstrip(":") == "pip" and value.endswith(":"):
            in_pip = True
            continue
        if in_pip and indent > 2:
            if r := _usable(value):
                found.append(r)
        else:
            in_pip = False
            if r := _conda_spec(value):
                found.append(r)
    return found


def _pipfile(path: Path) -> list[str]:
    data = tomllib.loads(path.read_text(errors="replace"))
    found = []
    for name, spec in data.get("packages", {}).items():
        version = spec if isinstance(spec, str) else spec.get("version", "*")
        if r := _usable(name if version in ("*", "") else f"{name}{version}"):
            found.append(r)
    return found


def _setup_cfg(path: Path) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(path.read_text(errors="replace"))
    text = parser.get("options", "install_requires", fallback="")
    return [r for line in text.splitlines() if (r := _usable(line))]


def _setup_py(path: Path) -> list[str]:
    """``install_requires=[...]`` of a setup() call, when it is a literal list."""
    tree = ast.parse(path.read_text(errors="replace"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            try:
                values = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [r for v in values if isinstance(v, str) and (r := _usable(v))]
    return []


def _test_extras(path: Path) -> list[str]:
    """The test extras of setup.py (a literal ``extras_require``), setup.cfg or pyproject.toml."""
    text = path.read_text(errors="replace")
    extras: dict[str, object] = {}
    if path.name == "setup.py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.keyword) and node.arg == "extras_require":
                try:
                    extras = ast.literal_eval(node.value)
                except ValueError:
                    return []
    elif path.name == "setup.cfg":
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        if parser.has_section("options.extras_require"):
            extras = dict(parser.items("options.extras_require"))
    else:
        extras = tomllib.loads(text).get("project", {}).get("optional-dependencies", {})
    found: list[str] = []
    for key, values in extras.items() if isinstance(extras, dict) else ():
        if not _TEST_EXTRAS.match(str(key)):
            continue
        lines = values.splitlines() if isinstance(values, str) else values
        if isinstance(lines, list):
            found += [r for v in lines if isinstance(v, str) and (r := _usable(v))]
    return found


_READERS = {
    "pyproject.toml": _pyproject,
    "environment.yml": _environment_yml,
    "environment.yaml": _environment_yml,
    "Pipfile": _pipfile,
    "setup.cfg": _setup_cfg,
    "setup.py": _setup_py,
}


def _files_in(folder: Path) -> list[Path]:
    found = sorted(
        p
        for p in folder.glob("requirements*.txt")
        if p.is_file() and not _SIDE_FILES.search(p.name[len("requirements") :])
    )
    return found + [folder / name for name in _READERS if (folder / name).is_file()]


def declared_requirements(notebook_dir: Path, root: Path) -> tuple[list[Declared], list[str]]:
    """The nearest project's declared requirements, and files that could not be read."""
    here = notebook_dir.resolve()
    folders = [here, *(p for p in here.parents if p == root or root in p.parents)]
    for folder in folders:
        files = _files_in(folder)
        if files:
            return _read(files, here)
    return [], []


def _read(files: list[Path], here: Path) -> tuple[list[Declared], list[str]]:
    """What ``files`` declare, each named as the notebook's folder ``here`` sees it."""
    declared: list[Declared] = []
    unreadable: list[str] = []
    for path in files:
        reader = _READERS.get(path.name, _requirements_txt)
        where = os.path.relpath(path, here)
        try:
            requirements = reader(path)
        except (OSError, ValueError, SyntaxError, configparser.Error) as exc:
            unreadable.append(f"{where}: {exc}")
            continue
        declared += [Declared(r, where) for r in requirements]
    return declared, unreadable


def docs_requirements(
    docs_folder: Path, root: Path, notebook_dir: Path
) -> tuple[list[Declared], list[str]]:
    """What the docs in ``docs_folder`` (a conf.py's) install, minus the tools that build them.

    The nearest folder from the conf.py's up to (not including) the project's
    root with requirements*.txt or environment.yml; ``docs/source/conf.py``
    finds ``docs/requirements.txt``.
    """
    here = notebook_dir.resolve()
    top = root.resolve()
    folder = docs_folder.resolve()
    folders = [folder, *(p for p in folder.parents if top in p.parents)]
    for candidate in folders:
        files = sorted(candidate.glob("requirements*.txt"))
        files += [candidate / n for n in ("environment.yml", "environment.yaml")]
        files = [f for f in files if f.is_file()]
        if files:
            declared, unreadable = _read(files, here)
            tools = [d for d in declared if _DOC_TOOLS.match(Requirement(d.requirement).name)]
            return [d for d in declared if d not in tools], unreadable
    return [], []


def _test_requirement_files(root: Path) -> list[Path]:
    patterns = [
        (root, "requirements*test*.txt"),
        (root, "test*requirements*.txt"),
        (root / "requirements", "test*.txt"),
        (root / "tests", "requirements*.txt"),
        (root / "test", "requirements*.txt"),
    ]
    found = [p for folder, glob in patterns for p in sorted(folder.glob(glob)) if p.is_file()]
    return list(dict.fromkeys(found))


def requirements_of_tests(root: Path, notebook_dir: Path) -> tuple[list[Declared], list[str]]:
    """What the project's tests install, minus the tools that run them: the ``test``
    (``tests``, ``testing``) extra of its setup.py, setup.cfg or pyproject.toml, and
    its test requirement files (requirements-test.txt, requirements/test.txt ...)."""
    here = notebook_dir.resolve()
    top = root.resolve()
    declared: list[Declared] = []
    unreadable: list[str] = []
    for name in ("setup.py", "setup.cfg", "pyproject.toml"):
        path = top / name
        if not path.is_file():
            continue
        where = os.path.relpath(path, here)
        try:
            declared += [Declared(r, f"{where} (test extra)") for r in _test_extras(path)]
        except (OSError, ValueError, SyntaxError, configparser.Error) as exc:
            unreadable.append(f"{where}: {exc}")
    more, bad = _read(_test_requirement_files(top), here)
    declared += more
    unreadable += bad
    kept: dict[str, Declared] = {}
    for each in declared:
        name = Requirement(each.requirement).name
        if not (_TEST_TOOLS.match(name) or _DOC_TOOLS.match(name)):
            kept.setdefault(canonical_name(each.requirement), each)
    return list(kept.values()), unreadable
