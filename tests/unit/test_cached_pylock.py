"""The pylock.toml nbseal hands uv: PyPI's packages name PyPI's index, so uv's cache serves them."""

from __future__ import annotations

from nbseal._toml import tomllib
from nbseal.uv import PYPI_INDEX, cached_pylock

HASH = "a" * 64
FILES = "https://files.pythonhosted.org/packages/aa/bb"


def _package(name: str, *lines: str) -> str:
    return "\n".join(["", "[[packages]]", f'name = "{name}"', 'version = "1.0"', *lines, ""])


def _wheel(url: str) -> str:
    return f'wheels = [{{ url = "{url}", hashes = {{ sha256 = "{HASH}" }} }}]'


def _sdist(where: str) -> str:
    return f'sdist = {{ {where}, hashes = {{ sha256 = "{HASH}" }} }}'


HEAD = 'lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.11"\n'


def _indexes(text: str) -> dict[str, str | None]:
    return {p["name"]: p.get("index") for p in tomllib.loads(text)["packages"]}


def test_packages_whose_files_are_pypi_s_name_pypi_s_index_and_nothing_else_changes() -> None:
    pylock = (
        HEAD
        + _package(
            "a", _sdist(f'url = "{FILES}/a-1.0.tar.gz"'), _wheel(f"{FILES}/a-1.0-py3-none-any.whl")
        )
        + _package(
            "b", "marker = \"sys_platform != 'win32'\"", _wheel(f"{FILES}/b-1.0-py3-none-any.whl")
        )
        + _package("c", _sdist(f'url = "{FILES}/c-1.0.tar.gz"'))
    )
    cached = cached_pylock(pylock)
    assert _indexes(cached) == {"a": PYPI_INDEX, "b": PYPI_INDEX, "c": PYPI_INDEX}
    before = tomllib.loads(pylock)
    after = tomllib.loads(cached)
    for package in after["packages"]:
        del package["index"]
    assert after == before  # files, hashes and markers as they were
    assert cached.replace(f'index = "{PYPI_INDEX}"\n', "") == pylock


def test_packages_from_anywhere_else_are_left_to_uv_as_they_are() -> None:
    pylock = (
        HEAD
        + _package("mirror", _wheel("https://mirror.example/a/mirror-1.0-py3-none-any.whl"))
        + _package(
            "plain-http", _wheel("http://files.pythonhosted.org/p/plain_http-1.0-py3-none-any.whl")
        )
        + _package("path", _sdist('path = "vendor/path-1.0.tar.gz"'))
        + _package("local", _wheel("file:///srv/wheels/local-1.0-py3-none-any.whl"))
        + _package(
            "mixed",
            _sdist('url = "https://mirror.example/mixed-1.0.tar.gz"'),
            _wheel(f"{FILES}/mixed-1.0-py3-none-any.whl"),
        )
        + _package(
            "own-index",
            'index = "https://mirror.example/simple"',
            _wheel(f"{FILES}/own_index-1.0-py3-none-any.whl"),
        )
        + _package(
            "archive",
            f'archive = {{ url = "{FILES}/archive-1.0.zip", hashes = {{ sha256 = "{HASH}" }} }}',
        )
        + _package("directory", 'directory = { path = "src/directory" }')
        + _package("nothing")
    )
    assert cached_pylock(pylock) == pylock


def test_text_not_laid_out_as_uv_writes_it_is_left_as_it_is() -> None:
    assert cached_pylock("not = [toml") == "not = [toml"
    odd = (
        HEAD
        + 'packages = [{ name = "a", version = "1.0", wheels = [{ url = "'
        + FILES
        + '/a-1.0-py3-none-any.whl" }] }]\n'
    )
    assert cached_pylock(odd) == odd
    # A "[[packages]]" line inside a string would take the index to the wrong package.
    tricky = HEAD + _package(
        "a", 'description = """\n[[packages]]\n"""', _wheel(f"{FILES}/a-1.0-py3-none-any.whl")
    )
    assert cached_pylock(tricky) == tricky
