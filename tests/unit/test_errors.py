"""Errors built from typed fields: what each records and how it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbseal.errors import (
    BuildError,
    DataFetchError,
    DebianError,
    DebianResolutionError,
    DebianUnavailableError,
    GuixError,
    GuixResolutionError,
    GuixUnavailableError,
    KernelStartError,
    LockFormatError,
    NbsealError,
    NotebookError,
    ResolutionError,
    UvError,
)


def test_debian_and_guix_failures_have_their_own_classes_not_uvs() -> None:
    for cls in (DebianResolutionError, DebianUnavailableError, GuixResolutionError):
        assert issubclass(cls, BuildError)
        assert not issubclass(cls, UvError)
        assert not issubclass(cls, ResolutionError)
    assert issubclass(DebianResolutionError, DebianError)
    assert issubclass(DebianUnavailableError, DebianError)
    assert issubclass(GuixResolutionError, GuixError)
    assert issubclass(GuixUnavailableError, GuixError)
    assert issubclass(ResolutionError, UvError)  # uv's own, unchanged


def test_debian_resolution_errors_record_the_requirement_and_apts_output() -> None:
    foreign = DebianResolutionError.foreign("numpy")
    assert foreign.requirement == "numpy"
    assert foreign.message == "'numpy' is not a Debian package requirement"
    assert foreign.context == ""
    assert "deb:NAME" in foreign.hint
    assert DebianResolutionError.bad_name("deb:R").message == "'deb:R' is not a Debian package name"
    unknown = DebianResolutionError.unknown_package(
        "nope", suite="bookworm", output="E: Unable to locate package nope\n", mirror_variable="M"
    )
    assert unknown.ename == "DebianResolutionError"
    assert (unknown.requirement, unknown.output) == ("nope", "E: Unable to locate package nope\n")
    assert unknown.render() == (
        "Debian bookworm has no package 'nope'\n"
        "E: Unable to locate package nope\n"
        "hint: check the name with `apt-cache search NAME`, or set M to a mirror that has it"
    )


def test_guix_errors_say_what_guix_said_and_what_to_install() -> None:
    unknown = GuixResolutionError.unknown_package("python@2.7", output="guix show: no match")
    assert unknown.message == "Guix has no package 'python@2.7'"
    assert unknown.context == "guix show: no match"
    assert unknown.requirement == "python@2.7"
    assert GuixResolutionError.foreign("numpy").message == "'numpy' is not a Guix package"
    missing = GuixUnavailableError(";;guix environment py <- python")
    assert missing.message == "guix is not installed on this machine"
    assert missing.needed_by == missing.context == ";;guix environment py <- python"
    assert "install Guix" in missing.hint


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            LockFormatError("Debian", "version", found=99, expected=1),
            "this Debian lock has format 99; this nbseal reads format 1",
        ),
        (LockFormatError("Guix", "invalid", detail="line 1"), "the Guix lock is not valid TOML"),
        (
            LockFormatError("Debian", "incomplete", detail="KeyError('suite')"),
            "the Debian lock misses a field",
        ),
    ],
)
def test_lock_format_errors_name_the_backend_and_the_problem(
    error: LockFormatError, message: str
) -> None:
    assert isinstance(error, BuildError)
    assert error.message == message
    assert error.backend in message


def test_lock_version_error_records_both_formats() -> None:
    error = LockFormatError("Guix", "version", found=2, expected=1)
    assert (error.problem, error.found, error.expected) == ("version", 2, 1)
    assert error.hint == "re-lock the environment with `nbseal lock`"


def test_kernel_start_errors_record_where_and_what_was_looked_for() -> None:
    none = KernelStartError.no_kernel(Path("/env"), hint="add one")
    assert none.message == "the environment at /env holds no Jupyter kernel"
    assert none.path == Path("/env")
    rootfs = KernelStartError.no_kernel(
        Path("/t"), holder="root file system", context="looked in /a", hint="h"
    )
    assert rootfs.render() == (
        "the root file system at /t holds no Jupyter kernel\nlooked in /a\nhint: h"
    )
    named = KernelStartError.no_kernel_named("zsh", ["python3", "bash"])
    assert named.ename == "KernelStartError"  # what a cell shows, as before
    assert (named.wanted, named.found) == ("zsh", ("bash", "python3"))
    assert named.context == "kernels found: bash, python3"


def test_notebook_errors_record_the_file() -> None:
    broken = NotebookError.not_json(Path("nb.ipynb"))
    assert broken.message == "nb.ipynb is not a notebook: it is not valid JSON"
    assert broken.path == Path("nb.ipynb")
    assert "version control" in broken.hint
    no_cells = NotebookError.not_a_notebook(Path("x.json"), "a notebook: it has no cells")
    assert no_cells.message == "x.json is not a notebook: it has no cells"
    damaged = NotebookError.damaged_lock("metadata.nbseal.x", KeyError("python"))
    assert damaged.where == "metadata.nbseal.x"
    assert damaged.message == "the lock in metadata.nbseal.x is damaged (KeyError('python'))"


def test_data_fetch_errors_record_the_url_and_keep_their_class_name() -> None:
    status = DataFetchError.http_status("http://h/x", 404, "Not Found")
    assert (status.url, status.status) == ("http://h/x", 404)
    assert status.message == "cannot download http://h/x: HTTP 404 Not Found"
    assert status.ename == "DataFetchError"
    cut = DataFetchError.cut_short("http://h/x", "3 of 9 bytes")
    assert cut.message == "the download of http://h/x was cut short: 3 of 9 bytes"
    assert cut.hint == "try again; nothing was stored"
    down = DataFetchError.unreachable("http://h/x", "Connection refused")
    assert down.message == "cannot download http://h/x: Connection refused"
    assert "nothing was stored" in down.hint
    for error in (status, cut, down):
        assert isinstance(error, (NbsealError, ConnectionError))


def test_a_kernel_that_failed_at_start_names_itself_its_environment_and_its_log() -> None:
    error = KernelStartError.failed_start(
        "ir", "r", "exited at start (signal 9)", log="Error: libR.so", hint="fix it"
    )
    assert (error.kernel, error.environment) == ("ir", "r")
    assert error.render() == (
        "the kernel 'ir' of environment 'r' exited at start (signal 9)\n"
        "Error: libR.so\n"
        "hint: fix it"
    )


def test_metadata_of_the_wrong_shape_is_named() -> None:
    error = NotebookError.not_an_object("metadata.nbseal.environments")
    assert error.where == "metadata.nbseal.environments"
    assert error.message == "metadata.nbseal.environments of this notebook is not an object"
    assert "nbseal lock" in error.hint


def test_a_missing_build_tool_is_named_with_the_user_it_is_needed_for() -> None:
    error = DebianUnavailableError.missing_tool(
        "newuidmap", user="alice", why="ids are mapped with it", hint="apt-get install uidmap"
    )
    assert error.tool == "newuidmap"
    assert error.render() == (
        "cannot build Debian environments as alice: newuidmap is not installed\n"
        "ids are mapped with it\n"
        "hint: apt-get install uidmap"
    )
    assert isinstance(error, BuildError), "caught wherever a build failure is"
