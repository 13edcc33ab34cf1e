"""``nbseal export``: the notebook's environments in formats other tools read.

Each export says in a header comment what it loses: other environments, the
sandbox, declared data, and (for a script) the exact lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nbseal._toml import tomllib
from nbseal.directives import parse_cell
from nbseal.errors import DirectiveError, NotebookError
from nbseal.lock import Lock
from nbseal.locking import check_locks
from nbseal.notebook import code_sources, metadata_data, metadata_locks, read_notebook
from nbseal.plan import DEFAULT_ENV_NAME, DEFAULT_IPYKERNEL, plan_notebook

__all__ = ["FORMATS", "export_notebook"]

FORMATS = ("script", "requirements", "lock")


def _locked(path: Path) -> Any:
    bad = [s for s in check_locks(path) if not s.ok]
    if bad:
        raise NotebookError.nothing_to_export(
            path, "\n".join(f"{s.name}: {s.state} ({s.reason})" for s in bad)
        )
    return read_notebook(path)


def export_notebook(path: Path, to: str) -> str:
    if to not in FORMATS:
        raise NotebookError.unknown_format(to, FORMATS)
    notebook = _locked(path)
    if to == "lock":
        section = {
            "environments": {n: lock.to_json() for n, lock in metadata_locks(notebook).items()},
            "data": metadata_data(notebook),
        }
        return json.dumps(section, indent=1, sort_keys=True) + "\n"
    if to == "requirements":
        return _requirements(path, notebook)
    return _script(path, notebook)


def _requirements(path: Path, notebook: Any) -> str:
    out = [
        f"# Exported by nbseal from {path.name}: pinned requirements with hashes",
        "# (pip install --require-hashes -r FILE). Lost: the sandbox and declared data;",
        "# each environment is a separate section (one requirements file per environment).",
    ]
    for name, lock in sorted(metadata_locks(notebook).items()):
        out += ["", f"# environment {name}: Python {lock.python}, as of {lock.exclude_newer}"]
        for package in tomllib.loads(lock.pylock).get("packages", []):
            artifacts = [*package.get("wheels", []), package.get("sdist") or {}]
            hashes = [a["hashes"]["sha256"] for a in artifacts if "sha256" in a.get("hashes", {})]
            line = f"{package['name']}=={package['version']}"
            if package.get("marker"):  # a release of one machine (x86_64, aarch64), or a platform's
                line += f" ; {package['marker']}"
            out.append(" \\\n    ".join([line, *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(out) + "\n"


def _script_lines(source: str, cell: int) -> list[str]:
    try:
        code = parse_cell(source).code
    except DirectiveError as exc:
        raise exc.in_cell(cell) from None
    lines = []
    for line in code.splitlines():
        if line.lstrip().startswith(("%", "!")):
            lines.append(f"# nbseal export: IPython-only line left out: {line.strip()}")
        else:
            lines.append(line)
    return lines


def _package_cutoffs(lock: Lock) -> list[str]:
    """``exclude-newer-package``: the cutoffs of packages not held at the pin."""
    if not lock.exclude_newer_package:
        return []
    table = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in lock.exclude_newer_package)
    return [f"# exclude-newer-package = {{ {table} }}"]


def _script(path: Path, notebook: Any) -> str:
    plan = plan_notebook(code_sources(notebook))
    declared = plan.locked_environments()
    if len(declared) != 1:
        raise NotebookError.several_environments(path, declared)
    ((name, declaration),) = declared.items()
    if declaration.kernel is not None:
        raise NotebookError.not_python(name, str(declaration.kernel))
    lock = metadata_locks(notebook)[name]
    added = {"ipykernel", DEFAULT_IPYKERNEL}  # what nbseal adds for the kernel itself
    dependencies = [r for r in declaration.requirements if r not in added]
    header = [
        "# /// script",
        f'# requires-python = "=={lock.python.rsplit(".", 1)[0]}.*"',
        "# dependencies = [",
        *(f"#     {json.dumps(d)}," for d in dependencies),
        "# ]",
        "#",
        "# [tool.uv]",
        f'# exclude-newer = "{lock.exclude_newer}"',
        *_package_cutoffs(lock),
        "# ///",
        f"# Exported by nbseal from {path.name} (environment {name!r}); run with `uv run`.",
        "# What this script loses: the sandbox (it runs with your files and network),",
        "# the exact lock (uv resolves again as of exclude-newer; `nbseal export --to",
        "# requirements` keeps the hashes), and values a cell shows without print().",
    ]
    for data in plan.data:
        header.append(f"# Data not fetched: {data.name} <- {data.url} sha256:{data.sha256}")
    body: list[str] = []
    cell_number = 0
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        cell_number += 1
        lines = _script_lines(str(cell.source), cell_number)
        if any(line.strip() for line in lines):
            body += ["", f"# %% cell {index}", *lines]
    if name != DEFAULT_ENV_NAME:
        header.append(f"# The notebook's environment {name!r} becomes the script's environment.")
    return "\n".join(header + body) + "\n"
