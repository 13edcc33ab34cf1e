"""Choosing releases that install without compiling, on a saved index page.

``data/numpy-simple.json`` is PyPI's PEP 691 page of numpy (fetched
2026-11-30 with ``Accept: application/vnd.pypi.simple.v1+json``), cut to the
releases 1.14.3-1.14.5 and 1.22.4-1.23.3 and without URLs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import cpython_tags, parse_tag
from packaging.version import Version

from nbseal.backends.pypi_index import (
    Target,
    first_installable,
    index_url,
    installs_at,
    instant,
    newest_at,
    project_files,
)
from nbseal.backends.revive import BUILD_TOOLS_PIN, build_tool_cutoffs, failed_build
from nbseal.directives import parse_cell
from nbseal.errors import DirectiveError
from nbseal.lock import FallForward, Lock
from nbseal.plan import Declaration
from nbseal.pythons import python_at, python_release

PAGE = json.loads((Path(__file__).parent / "data" / "numpy-simple.json").read_text())
PIN = instant("2018-06-01T00:00:00Z")
MANYLINUX = ["manylinux_2_36_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(35, 4, -1))]


def cpython(minor: int) -> Target:
    """CPython 3.minor on x86-64 glibc Linux, whatever runs the tests."""
    platforms = [*MANYLINUX, "manylinux2014_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    tags = frozenset(cpython_tags((3, minor), platforms=platforms))
    return Target(tags, f"3.{minor}.7", f"CPython 3.{minor}")


def test_numpy_at_a_2018_pin_has_no_wheel_for_cpython_311_but_had_one_for_36() -> None:
    files = project_files(PAGE)
    assert newest_at(files, cpython(11), PIN) == Version("1.14.3")
    assert not installs_at(files, cpython(11), Version("1.14.3"))
    assert installs_at(files, cpython(6), Version("1.14.3"))


def test_numpy_falls_forward_to_its_first_release_with_a_cpython_311_wheel() -> None:
    choice = first_installable(project_files(PAGE), cpython(11), PIN)
    assert choice is not None
    assert choice.version == Version("1.23.2")
    # The next second after that wheel's upload (2022-08-14T00:17:33.69Z): uv takes files before.
    assert choice.cutoff == "2022-08-14T00:17:34Z"
    # Python 3.6 needs no fall-forward: its first wheel after the pin is 1.14.4's.
    older = first_installable(project_files(PAGE), cpython(6), PIN)
    assert older is not None
    assert older.version == Version("1.14.4")


def test_a_release_that_excludes_the_python_is_not_chosen() -> None:
    # numpy 1.23 requires Python >=3.8: nothing of the page installs on 3.6 after 1.14.5.
    files = project_files(PAGE)
    late = instant("2022-01-01T00:00:00Z")
    assert first_installable(files, cpython(6), late) is None
    assert newest_at(files, cpython(11), late, SpecifierSet(">=1.23")) is None


def test_a_wheel_for_another_platform_does_not_install() -> None:
    files = project_files(PAGE)
    arm = Target(frozenset(parse_tag("cp311-cp311-linux_armv7l")), "3.11.7", "CPython 3.11")
    assert not installs_at(files, arm, Version("1.23.2"))
    sdists = [f for f in files if f.tags is None]
    assert sdists
    assert all(not cpython(11).installs(f) for f in sdists)


def test_the_index_is_uvs() -> None:
    assert index_url({}) == "https://pypi.org/simple"
    assert index_url({"UV_INDEX_URL": "https://mirror.example/simple/"}) == (
        "https://mirror.example/simple"
    )
    both = {"UV_INDEX_URL": "https://a.example/simple", "UV_DEFAULT_INDEX": "https://b.example/s"}
    assert index_url(both) == "https://b.example/s"


def test_build_tools_are_not_held_back_by_an_old_pin() -> None:
    cutoffs = build_tool_cutoffs("2018-06-01T00:00:00Z")
    assert cutoffs["setuptools"] == BUILD_TOOLS_PIN
    assert {"wheel", "hatchling", "flit-core", "poetry-core"} <= set(cutoffs)
    assert "cython" not in cutoffs
    later = "2099-01-01T00:00:00Z"
    assert set(build_tool_cutoffs(later).values()) == {later}


def test_a_failed_build_in_uvs_message_names_the_package() -> None:
    stderr = "error: Failed to build `pyzmq==17.0.0`\n  cause: The build backend returned an error"
    assert failed_build(stderr) == ("pyzmq", "17.0.0")
    assert failed_build("error: Failed to download and build `PyYAML==3.12`") == ("pyyaml", "3.12")
    assert failed_build("error: No solution found when resolving dependencies") is None


def test_the_python_of_a_pin() -> None:
    assert python_at("2018-06-01T00:00:00Z") == "3.6"
    assert python_at("2020-06-01T00:00:00Z") == "3.8"
    assert python_release("3.11.7") == "2022-10-24T00:00:00Z"
    assert python_release("2.7") is None


def _lock(**extra: object) -> Lock:
    return Lock("uv", ("numpy",), "3.11.7", "linux-x86_64", "2018-06-01T00:00:00Z", "", **extra)  # type: ignore[arg-type]


def test_fall_forwards_survive_the_lock_json_and_old_locks_read_as_none() -> None:
    note = FallForward("numpy", "1.14.3", "1.23.2", "first wheel for CPython 3.11")
    assert str(note) == "numpy 1.14.3 → 1.23.2: first wheel for CPython 3.11"
    lock = _lock(fall_forwards=(note,), exclude_newer_package=(("numpy", "2022-08-14T00:17:34Z"),))
    again = Lock.from_json(json.loads(lock.dumps()))
    assert again == lock
    old = _lock().to_json()
    assert "fall_forwards" not in old, "an old lock writes as before"
    assert "build" not in old
    assert "exclude_newer_package" not in old
    assert Lock.from_json(old).fall_forwards == ()
    assert lock.key == _lock().key, "the same packages: the same store entry"


def test_build_source_is_parsed_and_a_lock_of_another_mode_is_stale() -> None:
    cell = parse_cell("#seal env py <- numpy build=source")
    assert cell.directives[0].build == "source"  # type: ignore[union-attr]
    with pytest.raises(DirectiveError, match="build=fast"):
        parse_cell("#seal env py <- numpy build=fast")
    declared = Declaration("py", ("numpy",), "2018-06-01T00:00:00Z", build="source")
    assert "build mode changed" in str(declared.staleness(_lock()))
    assert Declaration("py", ("numpy",), "2018-06-01T00:00:00Z").staleness(_lock()) is None


def test_another_interpreters_tags_come_from_its_version_and_abi() -> None:
    import sys
    import sysconfig

    from packaging.tags import sys_tags

    from nbseal.backends.pypi_index import _tags_of

    version = ".".join(str(n) for n in sys.version_info[:3])
    soabi = sysconfig.get_config_var("SOABI") or ""
    assert _tags_of(version, sys.implementation.name, soabi) == frozenset(sys_tags())
    old = _tags_of("3.6.15", "cpython", "cpython-36m-x86_64-linux-gnu")
    assert next(iter(parse_tag("cp36-cp36m-manylinux1_x86_64"))) in old
    assert next(iter(parse_tag("cp311-cp311-manylinux1_x86_64"))) not in old


def test_python_auto_is_parsed_and_other_words_are_not() -> None:
    cell = parse_cell("#seal env py <- numpy python=auto")
    assert cell.directives[0].python == "auto"  # type: ignore[union-attr]
    with pytest.raises(DirectiveError, match="nor auto"):
        parse_cell("#seal env py <- numpy python=latest")
