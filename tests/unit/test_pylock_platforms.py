"""One lock for Linux x86_64 and aarch64: per-machine pylocks merged (issue 19)."""

from __future__ import annotations

import datetime
from dataclasses import replace

from packaging.markers import Marker
from packaging.utils import parse_wheel_filename

from nbseal._toml import tomllib
from nbseal.backends.machines import linux_target
from nbseal.backends.pypi_index import IndexFile
from nbseal.backends.uv import UvBackend
from nbseal.lock import Lock
from nbseal.plan import Declaration, host_platform, host_python_version
from nbseal.pylock_platforms import machine_of, merge_machines, served_platforms, uv_target

HEAD = 'lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.11"\n'
FILES = "https://files.pythonhosted.org/packages"


def _wheel(name: str, version: str, tag: str, sha: str) -> str:
    return (
        f'{{ url = "{FILES}/{name}-{version}-{tag}.whl", upload-time = 2025-05-17T21:32:47Z,'
        f' size = 10, hashes = {{ sha256 = "{sha}" }} }}'
    )


def _package(name: str, version: str, *wheels: str, marker: str = "") -> str:
    sdist = f'sdist = {{ url = "{FILES}/{name}-{version}.tar.gz", hashes = {{ sha256 = "5d" }} }}'
    lines = ["", "[[packages]]", f'name = "{name}"', f'version = "{version}"']
    if marker:
        lines.append(f'marker = "{marker}"')
    lines.append(sdist)
    if wheels:
        lines.append(f"wheels = [{', '.join(wheels)}]")
    return "\n".join(lines) + "\n"


X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
PURE = "py3-none-any"


def _packages(pylock: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = tomllib.loads(pylock)["packages"]
    return found


def _installed_on(pylock: str, machine: str) -> dict[str, str]:
    """What an installer on ``machine`` takes: the entries whose marker holds there."""
    env = {"platform_machine": machine, "sys_platform": "linux", "python_version": "3.11"}
    return {
        str(p["name"]): str(p["version"])
        for p in _packages(pylock)
        if not p.get("marker") or Marker(str(p["marker"])).evaluate(env)
    }


def test_one_version_everywhere_is_one_entry_with_every_machine_s_wheels() -> None:
    x86 = HEAD + _package("numpy", "2.2.6", _wheel("numpy", "2.2.6", X86, "ba"))
    x86 += _package("six", "1.17.0", _wheel("six", "1.17.0", PURE, "4f"))
    arm = HEAD + _package("numpy", "2.2.6", _wheel("numpy", "2.2.6", ARM, "b5"))
    arm += _package("six", "1.17.0", _wheel("six", "1.17.0", PURE, "4f"))
    merged = merge_machines({"x86_64": x86, "aarch64": arm})
    packages = _packages(merged.pylock)
    assert [(p["name"], p["version"], p.get("marker")) for p in packages] == [
        ("numpy", "2.2.6", None),
        ("six", "1.17.0", None),
    ]
    numpy_wheels = packages[0]["wheels"]
    assert isinstance(numpy_wheels, list)
    assert [w["hashes"]["sha256"] for w in numpy_wheels] == ["ba", "b5"]
    assert len(packages[1]["wheels"]) == 1  # type: ignore[arg-type]  # the same wheel once
    assert merged.notes == []
    assert served_platforms(merged.pylock) == ("linux-x86_64", "linux-aarch64")
    # Everything else as uv wrote it: requires-python, upload times as TOML datetimes.
    data = tomllib.loads(merged.pylock)
    assert data["requires-python"] == ">=3.11"
    assert data["created-by"] == "uv"
    assert numpy_wheels[0]["upload-time"] == datetime.datetime(
        2025, 5, 17, 21, 32, 47, tzinfo=datetime.timezone.utc
    )


def test_versions_that_differ_get_a_marker_each_and_are_said() -> None:
    x86 = HEAD + _package("psutil", "7.0.0", _wheel("psutil", "7.0.0", X86, "aa"))
    x86 += _package("nvidia-nccl", "2.21", _wheel("nvidia-nccl", "2.21", X86, "cc"))
    arm = HEAD + _package("psutil", "6.1.1", _wheel("psutil", "6.1.1", ARM, "bb"))
    arm += _package("pyyaml", "6.0.2", marker="sys_platform != 'win32'")  # sdist only
    merged = merge_machines({"x86_64": x86, "aarch64": arm})
    assert _installed_on(merged.pylock, "x86_64") == {"psutil": "7.0.0", "nvidia-nccl": "2.21"}
    assert _installed_on(merged.pylock, "aarch64") == {"psutil": "6.1.1", "pyyaml": "6.0.2"}
    markers = {(p["name"], p["version"]): p.get("marker") for p in _packages(merged.pylock)}
    assert markers[("pyyaml", "6.0.2")] == (
        "(sys_platform != 'win32') and (platform_machine == 'aarch64')"
    )
    assert merged.notes == [
        "psutil 6.1.1 on aarch64 (7.0.0 on x86_64)",
        "pyyaml 6.0.2 on aarch64 (none on x86_64), built from source there (no wheel)",
    ]


def test_a_version_without_a_wheel_for_the_other_machine_is_said() -> None:
    x86 = HEAD + _package("old", "1.0", _wheel("old", "1.0", X86, "aa"))
    arm = HEAD + _package("old", "1.0")
    merged = merge_machines({"x86_64": x86, "aarch64": arm})
    assert merged.notes == ["old 1.0 builds from source on aarch64 (no wheel)"]
    assert _installed_on(merged.pylock, "aarch64") == {"old": "1.0"}


def test_one_machine_alone_still_says_what_it_serves() -> None:
    x86 = HEAD + _package("six", "1.17.0", _wheel("six", "1.17.0", PURE, "4f"))
    merged = merge_machines({"x86_64": x86})
    assert served_platforms(merged.pylock) == ("linux-x86_64",)
    assert _installed_on(merged.pylock, "x86_64") == {"six": "1.17.0"}


def test_machines_and_uv_targets() -> None:
    assert machine_of("linux-x86_64") == "x86_64"
    assert machine_of("linux-aarch64") == "aarch64"
    assert machine_of("macosx-14.0-arm64") is None
    assert machine_of("linux-ppc64le") is None
    assert uv_target("aarch64") == "aarch64-unknown-linux-gnu"
    assert served_platforms(HEAD) == ()
    assert served_platforms("not [ toml") == ()


def _lock(pylock: str, platform: str = "linux-x86_64") -> Lock:
    return Lock(
        "uv", ("six",), host_python_version(), platform, "2025-06-01", pylock, serves="3.11"
    )


def test_a_lock_serving_both_machines_is_current_on_either() -> None:
    both = merge_machines({"x86_64": HEAD, "aarch64": HEAD}).pylock
    declaration = Declaration("py", ("six",), "2025-06-01")
    here = host_platform()
    made_elsewhere = "linux-aarch64" if here != "linux-aarch64" else "linux-x86_64"
    assert _lock(both, made_elsewhere).platforms == ("linux-x86_64", "linux-aarch64")
    assert declaration.staleness(_lock(both, made_elsewhere)) is None
    # A lock made before (no environments) serves the one platform it was made on.
    old = _lock(HEAD, made_elsewhere)
    assert old.platforms == (made_elsewhere,)
    assert f"locked for platform {made_elsewhere}" in (declaration.staleness(old) or "")
    only_there = merge_machines({made_elsewhere.split("-")[1]: HEAD}).pylock
    assert "locked for platform" in (declaration.staleness(replace(old, pylock=only_there)) or "")


def test_a_tree_built_on_another_machine_than_the_lock_s_has_a_key_of_its_own() -> None:
    """A store shared by an x86_64 and an aarch64 machine never mixes their trees."""
    both = merge_machines({"x86_64": HEAD, "aarch64": HEAD}).pylock
    here = host_platform()
    elsewhere = "linux-aarch64" if here != "linux-aarch64" else "linux-x86_64"
    made_here, made_there = _lock(both, here), _lock(both, elsewhere)
    backend = UvBackend()
    assert backend.store_key(made_here) == made_here.key
    assert backend.store_key(made_there) != made_there.key
    assert len(backend.store_key(made_there)) == len(made_there.key)


def test_the_other_machine_s_target_takes_its_manylinux_wheels_and_pure_ones() -> None:
    def wheel(filename: str) -> IndexFile:
        _, version, _, tags = parse_wheel_filename(filename)
        now = datetime.datetime.now(datetime.timezone.utc)
        return IndexFile(filename, version, frozenset(tags), now, None, False, "", True)

    target = linux_target("aarch64", "3.11.2")
    assert target.installs(wheel(f"numpy-2.2.6-{ARM}.whl"))
    assert target.installs(wheel("psutil-6.0.0-cp36-abi3-manylinux_2_17_aarch64.whl"))
    assert target.installs(wheel("six-1.17.0-py2.py3-none-any.whl"))
    assert not target.installs(wheel(f"numpy-2.2.6-{X86}.whl"))
    assert not target.installs(wheel("numpy-2.2.6-cp311-cp311-musllinux_1_2_aarch64.whl"))
    assert not target.installs(wheel("numpy-2.2.6-cp312-cp312-manylinux_2_17_aarch64.whl"))
    # uv's aarch64-unknown-linux-gnu is manylinux_2_28: newer glibc wheels are not taken.
    assert not target.installs(wheel("x-1.0-cp311-cp311-manylinux_2_34_aarch64.whl"))
