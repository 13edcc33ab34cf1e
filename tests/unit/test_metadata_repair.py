"""Metadata uv cannot parse, repaired as pip of its time read it."""

from __future__ import annotations

from nbseal._toml import tomllib
from nbseal.backends.metadata_repair import (
    dependency_metadata_toml,
    invalid_metadata,
    repaired_line,
)
from nbseal.backends.revive import failed_build


def test_a_legacy_version_bound_is_dropped_and_the_rest_kept() -> None:
    assert repaired_line("pytz (>=2011k)") == "pytz", "pandas 0.23.4's own line"
    assert repaired_line("numpy (>=1.9.0)") is None, "a line that parses stays as it is"
    assert repaired_line("foo[bar] (>=2011k); python_version < '3'") == (
        "foo[bar]; python_version < '3'"
    )
    assert repaired_line("python-dateutil>=2.5.0") is None


def test_uv_s_words_name_the_release() -> None:
    said = (
        "No solution found when resolving dependencies: pandas==0.22.0 has invalid metadata"
        " and you require pandas==0.22.0"
    )
    assert invalid_metadata(said) == ("pandas", "0.22.0")
    hint = "hint: Metadata for `Pandas` (v0.23.4) could not be parsed:"
    assert invalid_metadata(hint) == ("pandas", "0.23.4")
    # uv skipped the release and fell to an old sdist that no longer builds.
    failed = "error: Failed to build `pandas==0.13.1`"
    assert invalid_metadata(failed) is None
    assert failed_build(failed) == ("pandas", "0.13.1")


def test_uv_reads_the_repair_as_its_dependency_metadata() -> None:
    entry = {
        "name": "pandas",
        "version": "0.23.4",
        "requires-dist": ["python-dateutil>=2.5.0", "pytz", "numpy>=1.9.0"],
        "requires-python": ">=2.7,!=3.0.*",
    }
    parsed = tomllib.loads(dependency_metadata_toml([entry]))
    assert parsed == {"dependency-metadata": [entry]}
