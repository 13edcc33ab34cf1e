from __future__ import annotations

import pytest

from nbseal.lock import Lock, index_hosts, unnamed_sources
from nbseal.plan import Declaration, host_platform, host_python_version

PYLOCK = """\
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Six"
version = "1.16.0"
"""


def _lock(pylock: str = PYLOCK, python: str = "3.11.7") -> Lock:
    return Lock("uv", ("six",), python, "linux-x86_64", "2025-01-01T00:00:00Z", pylock)


def test_key_ignores_comments_and_requirements() -> None:
    a = _lock()
    b = Lock(
        "uv",
        ("six==1.16.0",),
        "3.11.7",
        "linux-x86_64",
        "2024-01-01T00:00:00Z",
        "# made by uv in /tmp/xyz\n" + PYLOCK,
    )
    assert a.key == b.key


def test_key_changes_with_content_and_python() -> None:
    assert _lock().key != _lock(PYLOCK.replace("1.16.0", "1.17.0")).key
    assert _lock().key != _lock(python="3.12.1").key


def test_round_trip_and_versions() -> None:
    lock = _lock()
    again = Lock.from_json(lock.to_json())
    assert again == lock
    assert again.version_of("six") == "1.16.0"
    assert [p.name for p in again.packages()] == ["Six"]


PYPI_WHEEL = (
    'wheels = [{ url = "https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl",'
    ' hashes = { sha256 = "00" } }]\n'
)


def _with(*entries: str) -> Lock:
    pylock = 'lock-version = "1.0"\n'
    for entry in entries:
        pylock += f"\n[[packages]]\n{entry}"
    return Lock("uv", ("six",), "3.11.7", "linux-x86_64", "2025-01-01T00:00:00Z", pylock)


def test_artifacts_from_pypi_or_the_machine_s_index_are_accounted_for() -> None:
    six = 'name = "six"\nversion = "1.16.0"\n' + PYPI_WHEEL
    assert unnamed_sources(_with(six), ("six",)) == []
    mirror = six.replace("files.pythonhosted.org", "pypi.mirror.example")
    assert unnamed_sources(_with(mirror), ("six",), hosts={"pypi.mirror.example"}) == []
    assert unnamed_sources(_with(mirror), ("six",)) == [
        "six from https://pypi.mirror.example/packages/six-1.16.0-py2.py3-none-any.whl"
    ]


@pytest.mark.parametrize(
    "artifact",
    [
        'sdist = { url = "http://127.0.0.1:8000/evil-0.1.tar.gz" }',
        'sdist = { url = "http://files.pythonhosted.org/evil-0.1.tar.gz" }',  # not https
        'archive = { path = "/tmp/evil-0.1.tar.gz" }',
        'archive = { url = "file:///tmp/evil-0.1.tar.gz" }',
        'directory = { path = "../evil" }',
        'vcs = { type = "git", url = "https://evil.example/evil.git", commit-id = "00" }',
        'wheels = [{ url = "https://evil.example/evil-0.1-py3-none-any.whl" }]',
    ],
)
def test_a_package_the_declaration_does_not_name_from_elsewhere_is_refused(artifact: str) -> None:
    six = 'name = "six"\nversion = "1.16.0"\n' + PYPI_WHEEL
    lock = _with(six, f'name = "evil"\nversion = "0.1"\n{artifact}\n')
    found = unnamed_sources(lock, ("six",))
    assert len(found) == 1, found
    assert found[0].startswith("evil from "), found
    # A requirement that names the package by URL vouches for it.
    assert unnamed_sources(lock, ("six", "evil @ https://evil.example/evil-0.1.tar.gz")) == []
    # And a declaration sees the lock as stale, saying what and from where.
    reason = Declaration("a", ("six",), None).staleness(
        Lock("uv", ("six",), host_python_version(), host_platform(), "", lock.pylock)
    )
    assert reason is not None
    assert "it installs evil from " in reason


def test_index_hosts_follow_uv_s_settings() -> None:
    hosts = index_hosts(
        {
            "UV_INDEX": "corp=https://pypi.corp.example/simple other=https://b.example/s",
            "UV_EXTRA_INDEX_URL": "https://c.example/simple",
            "UV_FIND_LINKS": "https://d.example/links,https://e.example/more",
        }
    )
    assert {"pypi.corp.example", "b.example", "c.example", "d.example", "e.example"} <= hosts
    assert {"pypi.org", "files.pythonhosted.org"} <= hosts
    assert "corp" not in hosts


def test_a_debian_lock_is_not_judged_by_python_indexes() -> None:
    lock = Lock("deb", ("deb:r-base-core",), "", "linux-x86_64", "", "not toml at all")
    assert unnamed_sources(lock, ("deb:r-base-core",)) == []


def test_the_kernel_meant_without_kernel_option() -> None:
    """One kernel beside Python's is the one meant; several must be named; none: Python."""
    from nbseal.backends.kernelspecs import pick_kernelspec
    from nbseal.errors import KernelStartError

    def spec(*argv: str) -> dict[str, object]:
        return {"argv": list(argv)}

    python = spec("python", "-m", "ipykernel_launcher", "-f", "{connection_file}")
    scheme = spec("python", "-m", "calysto_scheme", "-f", "{connection_file}")
    bash = spec("python", "-m", "bash_kernel", "-f", "{connection_file}")
    assert pick_kernelspec({"python3": python}, None)[0] == "python3"
    assert pick_kernelspec({"python3": python, "calysto_scheme": scheme}, None)[0] == (
        "calysto_scheme"
    )
    with pytest.raises(KernelStartError, match="holds 2 kernels") as caught:
        pick_kernelspec({"python3": python, "calysto_scheme": scheme, "bash": bash}, None)
    assert "kernel=bash" in caught.value.hint
    assert pick_kernelspec({"python3": python, "bash": bash}, "python3")[0] == "python3"


OLD_FORMAT_PYLOCK = """lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11.7"

[[packages]]
name = "numpy"
version = "2.2.6"
wheels = [
    { url = "x/numpy-2.2.6-cp311-cp311-manylinux1_x86_64.whl", hashes = { sha256 = "a" } },
    { url = "x/numpy-2.2.6-cp311-cp311-manylinux1_aarch64.whl", hashes = { sha256 = "b" } },
    { url = "x/numpy-2.2.6-cp311-cp311-win_amd64.whl", hashes = { sha256 = "c" } },
    { url = "x/numpy-2.2.6-cp312-cp312-manylinux1_x86_64.whl", hashes = { sha256 = "d" } },
    { url = "x/numpy-2.2.6-pp310-pypy310_pp73-manylinux1_x86_64.whl", hashes = { sha256 = "e" } },
]

[[packages]]
name = "psutil"
version = "7.0.0"
wheels = [
    { url = "x/psutil-7.0.0-cp36-abi3-manylinux1_x86_64.whl", hashes = { sha256 = "f" } },
    { url = "x/psutil-7.0.0-cp37-abi3-win_amd64.whl", hashes = { sha256 = "g" } },
]

[[packages]]
name = "pywin32"
version = "310"
marker = "sys_platform == 'win32'"
wheels = [
    { url = "x/pywin32-310-cp311-cp311-win_amd64.whl", hashes = { sha256 = "h" } },
]
"""


def test_an_older_lock_is_opened_to_its_series_without_a_re_resolve() -> None:
    from nbseal.lock import relaxed_pylock

    relaxed = relaxed_pylock(OLD_FORMAT_PYLOCK, "3.11")
    assert 'requires-python = ">=3.11"\n' in relaxed
    assert relaxed.replace('>=3.11"', '>=3.11.7"', 1) == OLD_FORMAT_PYLOCK  # nothing else changed
    pin = "2025-06-01T00:00:00Z"
    lock = Lock("uv", ("numpy",), "3.11.7", "linux-x86_64", pin, OLD_FORMAT_PYLOCK)
    assert [p.name for p in lock.packages()] == ["numpy", "psutil"]  # pywin32: not here
