"""Guix-Jupyter's `;;guix` lines: parsing and planning (pure, no Guix needed)."""

from __future__ import annotations

import hashlib

import pytest

from nbseal.backends import backend_for_requirements
from nbseal.digests import nix_base32_encode
from nbseal.directives import (
    HELP_TEXT,
    DataDirective,
    DescribeDirective,
    EnvDefineDirective,
    EnvSwitchDirective,
    GuixDescribeDirective,
    GuixDownloadDirective,
    GuixEnvironmentDirective,
    GuixPinDirective,
    PinDirective,
    parse_cell,
)
from nbseal.directives.parser import download_name
from nbseal.errors import DirectiveError
from nbseal.lock import Lock
from nbseal.plan import (
    Declaration,
    declare_env,
    guix_commit_of,
    host_platform,
    notebook_pin_after,
    plan_notebook,
    split_pin,
)

COMMIT = "c2d0f6d4e6d43a4ae0a6ea56cb6b9f8e3d0e7a7c"
CONTENT = b"sepal_length,species\n5.1,setosa\n"
HEX = hashlib.sha256(CONTENT).hexdigest()
NIX = nix_base32_encode(hashlib.sha256(CONTENT).digest())


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------
def test_environment_pin_download_describe_parse_into_the_seal_directives() -> None:
    cell = parse_cell(
        f";;guix pin {COMMIT}\n"
        ";;guix environment py <- python python-ipykernel python-numpy@1.26 glib:bin\n"
        f";;guix download https://example.org/data/iris%20v2.csv?raw=1 {NIX}\n"
        ";;guix describe\n"
        "import numpy"
    )
    pin, env, download, describe = cell.directives
    assert pin == GuixPinDirective(1, f"guix-commit:{COMMIT}", COMMIT)
    assert env == GuixEnvironmentDirective(
        2,
        "py",
        ("guix:python", "guix:python-ipykernel", "guix:python-numpy@1.26", "guix:glib:bin"),
    )
    # The URL's last path segment names the file; the nix-base32 hash becomes hex.
    assert download == GuixDownloadDirective(
        3, "iris v2.csv", "https://example.org/data/iris%20v2.csv?raw=1", NIX, HEX
    )
    assert describe == GuixDescribeDirective(4)
    # Everything that applies a #seal directive applies its ;;guix twin.
    assert isinstance(pin, PinDirective)
    assert isinstance(env, EnvDefineDirective)
    assert isinstance(download, DataDirective)
    assert isinstance(describe, DescribeDirective)
    # The lines are blanked (a Python kernel never sees `;;`), numbers survive.
    assert cell.code == "\n\n\n\nimport numpy"
    assert cell.has_code


def test_environment_without_packages_switches_back() -> None:
    (switch,) = parse_cell(";;guix environment r").directives
    assert switch == EnvSwitchDirective(1, "r")


@pytest.mark.parametrize(
    "digest",
    [NIX, f"sha256:{NIX}", HEX, f"sha256:{HEX}"],
)
def test_download_takes_guix_and_hex_hashes(digest: str) -> None:
    (download,) = parse_cell(f";;guix download http://h/x/d.bin {digest}").directives
    assert isinstance(download, GuixDownloadDirective)
    assert (download.name, download.sha256) == ("d.bin", HEX)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://h/a/b.csv", "b.csv"),
        ("https://h/a/b%2B1.csv?x=1#frag", "b+1.csv"),
        ("data/local.csv", "local.csv"),
        ("https://h/a/", None),
        ("https://h", None),
        ("https://h/a/..", None),
    ],
)
def test_download_names_its_file_after_the_url(url: str, name: str | None) -> None:
    assert download_name(url) == name


@pytest.mark.parametrize(
    "text",
    [";; guix pin abcdef0", ";;guixpin abcdef0", "  ;;guix pin abcdef0", ";;; comment"],
)
def test_other_scheme_comments_are_code(text: str) -> None:
    cell = parse_cell(text)
    assert cell.directives == ()
    assert cell.code == text


@pytest.mark.parametrize("commit", ["abcdef0", COMMIT, "v1.4.0", "v1.3.0rc2"])
def test_pin_takes_a_commit_prefix_a_full_commit_or_a_release_tag(commit: str) -> None:
    (pin,) = parse_cell(f";;guix pin {commit}").directives
    assert isinstance(pin, GuixPinDirective)
    assert pin.commit == commit


@pytest.mark.parametrize(
    ("text", "line", "fragment", "expected"),
    [
        (";;guix", 1, "names no command", ";;guix environment NAME <- PACKAGE..."),
        (";;guix environment", 1, "needs a name", ";;guix environment NAME <- PACKAGE..."),
        (";;guix environment 9x <- python", 1, "not a valid environment name", "<-"),
        (";;guix environment py python", 1, "expected `<-`", ";;guix environment NAME"),
        (";;guix environment py <-", 1, "lists no packages", ";;guix environment NAME"),
        (";;guix environment py <- (python)", 1, "not a Guix package", "NAME@VERSION"),
        (";;guix environment py <- python,numpy", 1, "not a Guix package", "NAME:OUTPUT"),
        (";;guix pin", 1, "one Guix commit", ";;guix pin COMMIT"),
        (";;guix pin abc def", 1, "one Guix commit", ";;guix pin COMMIT"),
        (";;guix pin 2025-06-01", 1, "not a Guix commit", "7 to 40 hex digits"),
        (";;guix pin master", 1, "not a Guix commit", "v1.4.0"),
        (";;guix download http://h/x", 1, "a URL and a hash", ";;guix download URL HASH"),
        (";;guix download http://h/x 0abc", 1, "not a SHA-256", "nix-base32"),
        (f";;guix download http://h/ {NIX}", 1, "cannot name the file", "URL HASH"),
        (";;guix describe now", 1, "takes no arguments", ";;guix describe"),
        (";;guix search python", 1, "does not run `;;guix search`", "in a terminal"),
        (";;guix pull", 1, "unknown ;;guix command 'pull'", ";;guix pin COMMIT"),
        ("x = 1\n;;guix describe", 2, "before any code", "directive lines at the top"),
        ("#seal env py <- guix:python guix:(bad)", 1, "not a Guix package", "NAME@VERSION"),
    ],
)
def test_malformed_guix_lines_name_the_line_and_the_form(
    text: str, line: int, fragment: str, expected: str
) -> None:
    with pytest.raises(DirectiveError) as info:
        parse_cell(text)
    error = info.value
    assert error.line == line
    assert fragment in error.message
    assert error.hint.startswith("expected")
    assert expected in error.hint
    assert text.splitlines()[line - 1].strip() in error.context


def test_seal_env_takes_guix_packages_too() -> None:
    (env,) = parse_cell("#seal env py <- guix:python guix:python-ipykernel").directives
    assert type(env) is EnvDefineDirective
    assert env.requirements == ("guix:python", "guix:python-ipykernel")


def test_help_lists_the_guix_forms() -> None:
    for form in ("environment NAME <- PKG", "pin COMMIT", "download URL HASH", "describe"):
        assert f";;guix {form}" in HELP_TEXT


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------
def test_a_guix_environment_is_declared_for_the_guix_backend_at_its_pin() -> None:
    plan = plan_notebook(
        [
            f";;guix pin {COMMIT}",
            ";;guix environment py <- python python-ipykernel\nprint(1)",
            f";;guix download https://h/iris.csv {NIX}",
        ]
    )
    (py,) = plan.environments.values()
    # No ipykernel is added: as in Guix-Jupyter, the packages name their kernel.
    assert py == Declaration(
        "py",
        ("guix:python", "guix:python-ipykernel"),
        f"guix-commit:{COMMIT}",
        source=";;guix environment",
    )
    assert backend_for_requirements(py.requirements).name == "guix"
    assert py.spec().pin == f"guix-commit:{COMMIT}"
    assert plan.used == {"py"}
    # ;;guix download is nbseal's data: recorded by `nbseal lock`, fetched without Guix.
    (data,) = plan.data
    assert (data.name, data.url, data.sha256) == ("iris.csv", "https://h/iris.csv", HEX)


def test_an_unpinned_guix_environment_has_no_pin_until_resolved() -> None:
    plan = plan_notebook([";;guix environment py <- python python-ipykernel"])
    assert plan.environments["py"].pin is None


@pytest.mark.parametrize(
    "cells",
    [
        [f";;guix pin {COMMIT}", "#seal pin 2025-06-01"],
        ["#seal pin 2025-06-01", f";;guix pin {COMMIT}"],
    ],
)
def test_a_guix_pin_and_a_date_pin_live_side_by_side(cells: list[str]) -> None:
    plan = plan_notebook(
        [*cells, "#seal env u <- six", ";;guix environment g <- python python-ipykernel"]
    )
    assert plan.environments["u"].pin == "2025-06-01T00:00:00Z"
    assert plan.environments["g"].pin == f"guix-commit:{COMMIT}"


def test_pins_as_one_string() -> None:
    date = PinDirective(1, "2025-06-01T00:00:00Z")
    guix = GuixPinDirective(2, "guix-commit:abcdef0", "abcdef0")
    both = notebook_pin_after(notebook_pin_after(None, date), guix)
    assert both == "2025-06-01T00:00:00Z guix-commit:abcdef0"
    assert split_pin(both) == ("2025-06-01T00:00:00Z", "guix-commit:abcdef0")
    assert split_pin(notebook_pin_after(None, guix)) == (None, "guix-commit:abcdef0")
    assert split_pin(None) == (None, None)
    later = notebook_pin_after(both, PinDirective(3, "2026-01-01T00:00:00Z"))
    assert later == "2026-01-01T00:00:00Z guix-commit:abcdef0"
    assert guix_commit_of(both) == "abcdef0"
    assert guix_commit_of("2025-06-01T00:00:00Z") is None


def test_a_guix_pin_alone_leaves_other_environments_unpinned() -> None:
    """What the kernel sees without its pin merging: the pin string of a ;;guix pin only."""
    (env,) = parse_cell("#seal env u <- six").directives
    assert isinstance(env, EnvDefineDirective)
    assert declare_env(env, "guix-commit:abcdef0").pin is None


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("#seal env x <- guix:python six", "either Guix packages"),
        ("#seal env x <- guix:python deb:bash", "either Guix packages"),
        ("#seal env x <- guix:python pin=2025-01-01", "pinned to a Guix commit"),
        ("#seal env x <- guix:python python=3.11", "brings its own Python"),
        (";;guix environment x", "no environment named 'x'"),
    ],
)
def test_bad_guix_environments_name_the_cell(source: str, fragment: str) -> None:
    with pytest.raises(DirectiveError) as info:
        plan_notebook(["print(0)", source])
    assert info.value.cell == 2
    assert fragment in info.value.message


def test_backends_by_requirements() -> None:
    assert backend_for_requirements(("six",)).name == "uv"
    assert backend_for_requirements(("deb:bash",)).name == "deb"
    assert backend_for_requirements(("guix:python", "guix:python-ipykernel")).name == "guix"


def test_a_guix_lock_goes_stale_when_the_commit_or_packages_change() -> None:
    requirements = ("guix:python", "guix:python-ipykernel")
    pylock = 'lock-version = 1\n[[packages]]\nname = "python"\nversion = "3.11.11"\n'
    lock = Lock("guix", requirements, "", host_platform(), "guix-commit:abcdef0", pylock)
    assert Declaration("py", requirements, "guix-commit:abcdef0").staleness(lock) is None
    assert Declaration("py", requirements, None).staleness(lock) is None
    moved = Declaration("py", requirements, "guix-commit:1234567").staleness(lock)
    assert moved is not None
    assert "pin changed" in moved
    more = Declaration("py", (*requirements, "guix:python-numpy"), "guix-commit:abcdef0")
    assert "requirements changed" in (more.staleness(lock) or "")
