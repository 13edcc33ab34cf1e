"""``python=auto`` finds interpreters already on the machine.

A fake ``PYENV_ROOT`` holds real symlinks to the real CPythons pyenv keeps on
this machine (and CI's), a directory that lies about its version, and a
``PATH`` whose shim fails the way pyenv's do for a version that is not the
global one. Each candidate is run; only what it says counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest

from nbseal.backends.interpreters import (
    MachinePythons,
    candidates,
    probe,
    set_interpreter_provider,
)

PYENV = Path("/root/.pyenv/versions")
REAL36 = PYENV / "3.6.15" / "bin" / "python3.6"
REAL37 = PYENV / "3.7.16" / "bin" / "python3.7"
SHIM = '#!/bin/sh\necho "pyenv: python3.6: command not found" >&2\nexit 127\n'

pytestmark = pytest.mark.skipif(
    # os.access, not is_file: a regular user may not even look into /root.
    not (os.access(REAL36, os.X_OK) and os.access(REAL37, os.X_OK)),
    reason="needs pyenv's CPython 3.6.15 and 3.7.16, runnable by this user "
    "(as root on this project's machines and CI)",
)


class NoneFromUv:
    """Stands in for uv (which cannot download here): finds nothing, says why."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def find(self, request: str) -> tuple[str | None, str]:
        self.asked.append(request)
        return None, f"No download found for request: cpython-{request}"


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def link(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a pyenv root of its own and a PATH holding only a broken shim."""
    root = tmp_path / "pyenv"
    versions = root / "versions"
    link(versions / "3.6.15" / "bin" / "python3.6", REAL36)
    # A directory named for a newer 3.6 whose python is really 3.7.
    link(versions / "3.6.99" / "bin" / "python3.6", REAL37)
    # An older 3.6 that answers truthfully with its (older) version.
    executable(versions / "3.6.3" / "bin" / "python3.6", "#!/bin/sh\necho CPython 3.6.3\n")
    link(versions / "3.7.16" / "bin" / "python3.7", REAL37)
    # Not versions of the form X.Y.Z: pyenv-virtualenv's envs and dev builds.
    link(versions / "myenv" / "bin" / "python3.6", REAL36)
    executable(versions / "3.6-dev" / "bin" / "python3.6", "#!/bin/sh\nexit 1\n")
    shims = tmp_path / "shims"
    executable(shims / "python3.6", SHIM)
    executable(shims / "python3.8", SHIM.replace("3.6", "3.8"))
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASDF_DATA_DIR", raising=False)
    monkeypatch.setenv("PATH", str(shims))
    return tmp_path


def test_candidates_are_pyenv_releases_newest_first_then_the_path(machine: Path) -> None:
    found = candidates("3.6")
    versions = machine / "pyenv" / "versions"
    assert found[:3] == [
        versions / "3.6.99" / "bin" / "python3.6",
        versions / "3.6.15" / "bin" / "python3.6",
        versions / "3.6.3" / "bin" / "python3.6",
    ]
    assert found[-1] == machine / "shims" / "python3.6"
    assert all("myenv" not in str(p) and "3.6-dev" not in str(p) for p in found)


def test_the_newest_real_patch_release_is_taken_and_liars_and_shims_are_skipped(
    machine: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uv = NoneFromUv()
    caplog.set_level(logging.INFO, logger="nbseal.interpreters")
    found, why = asyncio.run(MachinePythons(uv).find("3.6"))
    assert found == str(machine / "pyenv" / "versions" / "3.6.15" / "bin" / "python3.6")
    assert why == ""
    assert uv.asked == [], "uv is asked only when the machine has none"
    logged = caplog.text
    assert "3.6.99/bin/python3.6: is 3.7.16, not 3.6" in logged
    assert "shims/python3.6: does not run (exit 127): pyenv: python3.6: command not found" in (
        logged
    )


def test_an_exact_release_is_found_by_what_the_interpreter_says(machine: Path) -> None:
    found, _ = asyncio.run(MachinePythons(NoneFromUv()).find("3.6.3"))
    assert found == str(machine / "pyenv" / "versions" / "3.6.3" / "bin" / "python3.6")


def test_a_series_found_nowhere_says_what_was_tried_and_what_uv_said(machine: Path) -> None:
    uv = NoneFromUv()
    found, why = asyncio.run(MachinePythons(uv).find("3.8"))
    assert found is None
    assert uv.asked == ["3.8"]
    assert "shims/python3.8 does not run (exit 127): pyenv: python3.8: command not found" in why
    assert "uv: No download found for request: cpython-3.8" in why


def test_asdf_installs_are_candidates(machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asdf = machine / "asdf"
    link(asdf / "installs" / "python" / "3.7.16" / "bin" / "python3.7", REAL37)
    monkeypatch.setenv("ASDF_DATA_DIR", str(asdf))
    found, _ = asyncio.run(MachinePythons(NoneFromUv()).find("3.7"))
    # pyenv's comes first at the same version; asdf's is a candidate all the same.
    assert found == str(machine / "pyenv" / "versions" / "3.7.16" / "bin" / "python3.7")
    assert asdf / "installs" / "python" / "3.7.16" / "bin" / "python3.7" in candidates("3.7")


def test_probe_tells_a_missing_file_and_another_implementation(tmp_path: Path) -> None:
    assert asyncio.run(probe(tmp_path / "nothing"))[0] is None
    pypy = executable(tmp_path / "pypy", "#!/bin/sh\necho PyPy 3.9.18\n")
    assert asyncio.run(probe(pypy)) == (None, "is PyPy 3.9.18, not CPython")
    assert asyncio.run(probe(REAL36))[0] == "3.6.15"


def test_kernels_before_protocol_5_3_are_interrupted_by_signal() -> None:
    from nbseal.kernel.subkernel import answers_interrupt

    assert answers_interrupt({"protocol_version": "5.3"})
    assert answers_interrupt({"protocol_version": "5.4"})
    assert not answers_interrupt({"protocol_version": "5.1"}), "ipykernel 4.8 (2018)"
    assert answers_interrupt({}), "not yet known: as the kernelspec says"


class Only:
    """Stands in for the machine: these series only."""

    def __init__(self, found: dict[str, str]) -> None:
        self.found = found
        self.asked: list[str] = []

    async def find(self, request: str) -> tuple[str | None, str]:
        self.asked.append(request)
        return self.found.get(request), f"no python{request}"


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="dates of CPython 3.11")
def test_a_pin_whose_python_is_not_here_takes_the_nearest_after_it() -> None:
    from nbseal.backends.interpreters import choose_python

    machine = Only({"3.6": str(REAL36), "3.7": str(REAL37)})
    set_interpreter_provider(machine)
    try:
        chosen = asyncio.run(choose_python("2015-09-03T09:52:11Z"))
        assert machine.asked == ["3.4", "3.5", "3.6"], "3.4, then each series after it"
        assert chosen.python == str(REAL36)
        assert chosen.note is not None
        assert (chosen.note.pinned, chosen.note.chosen) == ("3.4", "3.6.15")
        assert "3.6, the nearest after it, runs the environment" in chosen.note.reason
        exact = asyncio.run(choose_python("2018-08-01T00:00:00Z"))
        assert (exact.python, exact.note) == (str(REAL37), None)
        nowhere = Only({})
        set_interpreter_provider(nowhere)
        fallback = asyncio.run(choose_python("2015-09-03T09:52:11Z"))
        assert fallback.python == sys.executable
        assert nowhere.asked == ["3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10"]
    finally:
        set_interpreter_provider(None)
