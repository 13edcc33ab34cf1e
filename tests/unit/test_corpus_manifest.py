"""The corpus manifest (tests/corpus/MANIFEST.toml) holds what issue 16 asks of a corpus."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath

import nbformat

from tests.corpus.corpus import load_manifest, text_cells
from tests.corpus.measure import Figures, _matching_cells, count_plain, count_verified

PERMISSIVE = {"MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "CC-BY-4.0"}


def test_the_corpus_is_large_and_varied_enough() -> None:
    entries = load_manifest()
    assert len(entries) >= 16
    assert len({e.repo for e in entries}) >= 6
    years = {dt.datetime.fromisoformat(e.last_commit).year for e in entries}
    assert min(years) <= 2017
    assert max(years) >= 2019


def test_every_entry_is_licensed_dated_and_placed_inside_its_root() -> None:
    for entry in load_manifest():
        assert entry.licence in PERMISSIVE, entry.slug
        assert len(entry.commit) == 40, entry.slug
        assert len(entry.sdist_sha256) == 64, entry.slug
        assert dt.datetime.fromisoformat(entry.last_commit).tzinfo is not None, entry.slug
        root = PurePosixPath(entry.root)
        for inside in filter(None, (entry.path, entry.requirements)):
            assert root == PurePosixPath(".") or root in PurePosixPath(inside).parents, (
                f"{entry.slug}: {inside} is outside its root {entry.root}"
            )
        assert entry.expect_reproduced >= 0, entry.slug
        assert entry.notes, entry.slug


def test_text_cells_are_what_verify_compares() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("print(1)"),
        nbformat.v4.new_code_cell("plot()"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})]
    assert list(text_cells(nb)) == [2], "an image alone, or no output, is not text"


def test_cells_of_an_adopted_notebook_are_found_after_the_added_first_cell() -> None:
    original = nbformat.v4.new_notebook()
    original.cells = [nbformat.v4.new_code_cell(s) for s in ("import numpy", "print(2)", "")]
    adopted = nbformat.v4.new_notebook()
    adopted.cells = [
        nbformat.v4.new_code_cell("#seal pin 2019-01-01\n#seal env py <- numpy"),
        *(nbformat.v4.new_code_cell(s) for s in ("import numpy", "print(2)", "")),
    ]
    assert _matching_cells(original, adopted) == {1: 2, 2: 3, 3: 4}
    # adopt may also put its directives above the notebook's own first cell
    adopted.cells = adopted.cells[1:]
    adopted.cells[0].source = "#seal pin 2019-01-01\nimport numpy"
    assert _matching_cells(original, adopted) == {1: 1, 2: 2, 3: 3}


def test_verify_results_count_per_original_cell_and_forgive_stored_errors() -> None:
    original = nbformat.v4.new_notebook()
    original.cells = [nbformat.v4.new_code_cell(s) for s in ("print(1)", "1/0", "import x", "y")]
    original.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    original.cells[1].outputs = [
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero")
    ]
    original.cells[3].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"})]
    adopted = nbformat.v4.new_notebook()
    adopted.cells = [nbformat.v4.new_code_cell("#seal env py <- x"), *original.cells]
    result = {
        "problem": None,
        "cells": [
            {"cell": 1, "status": "reproduced", "note": ""},
            {"cell": 2, "status": "reproduced", "note": ""},
            {"cell": 3, "status": "error", "note": "ZeroDivisionError: division by zero"},
            {"cell": 4, "status": "reproduced", "note": ""},
            {"cell": 5, "status": "differs", "note": ""},
        ],
    }
    figures = Figures("t")
    count_verified(figures, original, adopted, result)
    assert figures.environment
    assert figures.runs, "the stored ZeroDivisionError came back: no unexpected error"
    assert (figures.text_cells, figures.reproduced, figures.differing) == (3, 1, [2, 4])
    result["cells"][3] = {"cell": 4, "status": "error", "note": "ModuleNotFoundError: x"}
    figures = Figures("t")
    count_verified(figures, original, adopted, result)
    assert not figures.runs
    assert figures.note == "cell 3: ModuleNotFoundError: x"
    failed = Figures("t")
    count_verified(failed, original, adopted, {"problem": "py: build failed", "cells": []})
    assert not failed.environment
    assert failed.reproduced == 0


def test_a_plain_run_compares_with_nbseals_normalisation() -> None:
    stored = nbformat.v4.new_notebook()
    stored.cells = [nbformat.v4.new_code_cell(s) for s in ("print(object())", "1/0", "f()")]
    stored.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="<object at 0x7f00aa11bb22>\n")
    ]
    stored.cells[1].outputs = [
        nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero")
    ]
    stored.cells[2].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "3"})]
    fresh = nbformat.from_dict(stored)
    fresh.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="<object at 0x55aa00cc1234>\n")
    ]
    fresh.cells[2].outputs = [
        nbformat.v4.new_output("error", ename="NameError", evalue="name 'f' is not defined")
    ]
    figures = Figures("t")
    count_plain(figures, stored, fresh, problem="")
    assert (figures.text_cells, figures.reproduced, figures.differing) == (3, 2, [3])
    assert not figures.runs
    assert figures.note.startswith("cell 3 raised NameError")


def test_without_an_older_python_the_bounds_measured_on_this_one_apply() -> None:
    entries = {e.slug: e for e in load_manifest()}
    diffuse = entries["pvlib-tmy-diffuse"]
    assert diffuse.expectations(older_python=True) == (True, 13)
    assert diffuse.expectations(older_python=False) == (False, 8)
    lifelines = entries["lifelines-untitled"]
    assert lifelines.expectations(older_python=False) == (False, 0)
    same = entries["nbval-sample"]  # no _here bounds: the same either way
    assert same.expectations(older_python=False) == same.expectations(older_python=True)
