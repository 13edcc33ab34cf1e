"""Real notebooks revived as a user would (issue 16): ``nbseal adopt``, then ``nbseal verify``.

One test per notebook of tests/corpus/MANIFEST.toml. Each copies the
notebook's project folder (out of its source distribution) to a temporary
folder, sets the notebook's mtime to its last commit, runs ``nbseal adopt NB``
and ``nbseal verify NB --json`` through the CLI, and checks what the manifest
expects of that notebook: an environment always; a run without unexpected
errors where ``expect_runs``; at least ``expect_reproduced`` cells with text
output reproduced. tests/corpus/measure.py counts the figures, as
bench/corpus_baseline.py --nbseal does.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nbseal.backends.interpreters import choose_python
from nbseal.pythons import host_python
from tests.corpus.corpus import Entry, SdistCache, load_manifest
from tests.corpus.measure import measure_nbseal

# Every notebook takes 30-90 s on 2 cores (adopt resolves, verify builds and
# runs): the default run takes the sample marked `ci = true` in the manifest,
# one notebook of each of five projects; NBSEAL_CORPUS=all takes all of them (what the
# figures in docs/revive.md come from, as bench/corpus_baseline.py --nbseal).
ENTRIES = [e for e in load_manifest() if e.ci or os.environ.get("NBSEAL_CORPUS") == "all"]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("default_env")]


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> SdistCache:
    """The corpus's source distributions, downloaded once for the whole module."""
    return SdistCache(tmp_path_factory.mktemp("corpus-sdists"))


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.slug for e in ENTRIES])
def test_adopt_then_verify_revives_the_notebook(
    entry: Entry, sdists: SdistCache, tmp_path: Path
) -> None:
    # python=auto takes the CPython of the notebook's time when this user can run
    # one (pyenv's, as root here); a regular user without them gets this Python.
    choice = asyncio.run(choose_python(entry.last_commit[:10]))
    older = choice.python != host_python()
    expect_runs, expect_reproduced = entry.expectations(older_python=older)
    figures, report = measure_nbseal(entry, sdists, tmp_path, env=dict(os.environ), cell_timeout=60)
    context = (
        f"{entry.slug} ({entry.repo}, {entry.path}, {choice.python}): {figures.note}\n{report}"
    )
    assert figures.environment, context
    if expect_runs:
        assert figures.runs, context
    assert figures.reproduced >= expect_reproduced, (
        f"{figures.reproduced} of {figures.text_cells} cells with text output reproduced, "
        f"expected at least {expect_reproduced}; differing: {figures.differing}\n{context}"
    )
