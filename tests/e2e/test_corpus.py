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

import os
from pathlib import Path

import pytest

from tests.corpus.corpus import Entry, SdistCache, load_manifest
from tests.corpus.measure import measure_nbseal

# Every notebook takes 30-90 s on 2 cores (adopt resolves, verify builds and
# runs): the default run takes the sample marked `ci = true` in the manifest,
# one or two per project; NBSEAL_CORPUS=all takes all of them (what the
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
    figures, report = measure_nbseal(entry, sdists, tmp_path, env=dict(os.environ), cell_timeout=60)
    context = f"{entry.slug} ({entry.repo}, {entry.path}): {figures.note}\n{report}"
    assert figures.environment, context
    if entry.expect_runs:
        assert figures.runs, context
    assert figures.reproduced >= entry.expect_reproduced, (
        f"{figures.reproduced} of {figures.text_cells} cells with text output reproduced, "
        f"expected at least {entry.expect_reproduced}; differing: {figures.differing}\n{context}"
    )
