"""The cells the docs show run as shown (issue 20): a change that breaks one fails here.

Every ```python block of docs/first-notebook.md, docs/directives.md and
docs/directives/*.md, and every ```bash block that starts with a directive
(a cell of a bash kernel), becomes a cell of one notebook per page, in page
order; `nbseal run` runs it in a copy of examples/ (whose data/petals.csv the
data examples read), as a user following the page would. Syntax lines and
alternatives are fenced ```text and are not cells. Guix's pages need `guix`
and are covered by tests/e2e/test_guix.py against a stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from nbseal.sandbox.identity import sandbox_identity
from tests.e2e.test_cli import nbseal

pytestmark = pytest.mark.usefixtures("default_env")

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "docs" / "first-notebook.md",
    ROOT / "docs" / "directives.md",
    *sorted((ROOT / "docs" / "directives").glob("*.md")),
]
_BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```$", re.M | re.S)


def cells_of(page: Path) -> list[str]:
    """The notebook cells a page shows, in order."""
    cells = []
    for language, body in _BLOCK.findall(page.read_text()):
        first = body.lstrip().splitlines()[0] if body.strip() else ""
        if language == "python" or first.startswith(("#seal", ";;guix")):
            cells.append(body.rstrip("\n"))
    return cells


def test_the_docs_show_cells_at_all() -> None:
    shown = {page.name: len(cells_of(page)) for page in PAGES}
    assert shown["first-notebook.md"] >= 4
    assert sum(shown.values()) >= 12


@pytest.mark.parametrize("page", [p for p in PAGES if cells_of(p)], ids=lambda p: p.name)
def test_every_cell_a_page_shows_runs(page: Path, tmp_path: Path) -> None:
    folder = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", folder)
    results = folder / "results"  # what `#seal share results rw` shares
    results.mkdir()
    identity = sandbox_identity()
    if identity.drops:  # run by root: the sandbox's uid must write it (share.md says so)
        os.chown(results, identity.host_uid, identity.host_gid)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells_of(page)]
    path = folder / f"{page.stem}.ipynb"
    nbformat.write(notebook, path)
    proc = nbseal("run", str(path))
    assert proc.returncode == 0, f"{page.relative_to(ROOT)}:\n{proc.stderr[-3000:]}"
    ran = nbformat.read(path, as_version=4)
    errors = [o for c in ran.cells for o in c.outputs if o.get("output_type") == "error"]
    assert errors == [], f"{page.relative_to(ROOT)}: {errors}"
