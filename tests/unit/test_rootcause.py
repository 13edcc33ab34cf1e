"""uv's root cause in one or two lines, from what real uv runs printed (tests/unit/uv_stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbseal.rootcause import root_cause

SAVED = Path(__file__).parent / "uv_stderr"


def said(name: str) -> str:
    return (SAVED / name).read_text()


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        (
            "compile-nopkg.txt",
            "No solution found when resolving dependencies: nonexistent-package-nbseal-xyz "
            "was not found in the package registry and you require "
            "nonexistent-package-nbseal-xyz",
        ),
        (
            "uv0.5-compile-nopkg.txt",
            "No solution found when resolving dependencies: nonexistent-package-nbseal-xyz "
            "was not found in the package registry and you require "
            "nonexistent-package-nbseal-xyz",
        ),
        (
            "compile-noversion.txt",
            "No solution found when resolving dependencies: there is no version of six==99.0 "
            "and you require six==99.0",
        ),
        (
            "sync-build-failed.txt",
            "Failed to build `numpy==1.14.5`: "
            "ModuleNotFoundError: No module named 'distutils.msvccompiler'",
        ),
        (
            "uv0.5-install-build-failed.txt",
            "Failed to build `numpy==1.14.5`: "
            "ModuleNotFoundError: No module named 'distutils.msvccompiler'",
        ),
        (
            "install-build-dependencies.txt",
            "Failed to download and build `numpy==1.14.3`: only setuptools<=39.2.0 is "
            "available and you require setuptools>=40.8.0",
        ),
        (
            "uv0.5-install-build-dependencies.txt",
            "Failed to download and build `numpy==1.14.3`: only setuptools<40.8.0 is "
            "available and you require setuptools>=40.8.0",
        ),
    ],
)
def test_the_headline_with_the_most_specific_cause(name: str, cause: str) -> None:
    assert root_cause(said(name)).splitlines()[0] == cause


def test_the_hint_follows_in_its_first_sentences() -> None:
    lines = root_cause(said("compile-pinned.txt")).splitlines()
    assert lines == [
        "No solution found when resolving dependencies: only six<=1.13.0 is available and "
        "you require six>=1.17",
        "hint: `six` was filtered by `exclude-newer` to only include packages uploaded before "
        "2020-01-01T00:00:00Z. The latest version satisfying the requirement is v1.17.0, "
        "published at 2024-12-04T17:35:26.475Z.",
    ]
    # The build's own traceback and uv's advice on pyproject.toml stay out.
    build = root_cause(said("sync-build-failed.txt"))
    assert len(build.splitlines()) == 2
    assert "Traceback" not in build
    assert "[tool.uv.extra-build-dependencies]" not in build


def test_the_tail_of_a_long_build_still_names_the_exception() -> None:
    # What nbseal kept of a long build before (its last 25 lines): no headline left.
    tail = "\n".join(said("sync-build-failed.txt").splitlines()[-25:])
    cause = root_cause(tail).splitlines()
    assert cause[0] == "ModuleNotFoundError: No module named 'distutils.msvccompiler'"
    assert cause[1].startswith("hint: This error likely indicates")


def test_colours_and_unknown_texts() -> None:
    coloured = "\x1b[1m\x1b[31merror\x1b[39m\x1b[0m\x1b[1m:\x1b[0m Failed to build `x==1`\r\n"
    assert root_cause(coloured) == "Failed to build `x==1`"
    assert root_cause("something else went wrong\nat the end\n") == "at the end"
    assert root_cause("") == ""
