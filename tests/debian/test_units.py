"""The Debian backend's pure parts: lock text, specs, mirrors, path filters, mounts."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from nbseal.backends.debian import (
    DEFAULT_DPKG_OPTIONS,
    DebianBackend,
    DebianUnavailableError,
    SubidRange,
    debian_packages,
    host_sources,
    is_debian_spec,
    mirror_sources,
    prune_excluded,
    snapshot_timestamp,
    subid_ranges,
    unprivileged_problem,
)
from nbseal.backends.debian import tree as tree_module
from nbseal.backends.debian.indices import _list_prefix
from nbseal.backends.debian.kernel import find_rootfs_kernel_command
from nbseal.backends.debian.lock import DebCache, DebianLockData, DebianPackage, DebianSource
from nbseal.backends.debian.mmdebstrap import BuildUser, _dpkg_options, _normalise_hook
from nbseal.backends.debian.preflight import BuildIds, root_build_ids
from nbseal.backends.debian.tree import unpack_rootfs
from nbseal.errors import BuildError, DebianResolutionError, KernelStartError
from nbseal.lock import Lock
from nbseal.progress import Progress
from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.launch import LaunchRequest
from nbseal.sandbox.rootfs import RootfsLauncher
from nbseal.sandbox.userns import userns_command
from tests.dataserver import serve

SHA = "a" * 64


def _package(name: str, version: str = "1.0-1", sha: str = SHA, source: int = 0) -> DebianPackage:
    return DebianPackage(name, version, "amd64", sha, 10, f"pool/main/{name}_{version}.deb", source)


def _data(**changes: object) -> DebianLockData:
    base = {
        "suite": "bookworm",
        "architecture": "amd64",
        "include": ("r-base-core",),
        "sources": (DebianSource("http://deb.debian.org/debian", "bookworm"),),
        "packages": (_package("r-base-core", "4.2.2.20221110-2"), _package("zlib1g", "1:1.2")),
        "build_tools": (_package("eatmydata", "130-2"),),
        "dpkg_options": ("path-exclude=/usr/share/man/*",),
        "resolved_at": "2026-11-29T03:00:00Z",
    }
    base.update(changes)
    return DebianLockData(**base)  # type: ignore[arg-type]


def _lock(data: DebianLockData) -> Lock:
    return Lock("deb", ("deb:r-base-core",), "", "linux-x86_64", "2026-11-01", data.dumps())


# -- the lock -----------------------------------------------------------------
def test_lock_text_round_trips_and_lists_packages() -> None:
    data = _data()
    again = DebianLockData.loads(data.dumps())
    assert again == data
    lock = Lock.from_json(json.loads(_lock(data).dumps()))
    # Lock.packages() reads [[packages]] and skips [[build-tools]].
    assert [(p.name, p.version) for p in lock.packages()] == [
        ("r-base-core", "4.2.2.20221110-2"),
        ("zlib1g", "1:1.2"),
    ]
    assert lock.version_of("zlib1g") == "1:1.2"


def test_lock_key_ignores_resolution_time_but_not_content() -> None:
    key = _lock(_data()).key
    assert _lock(_data(resolved_at="2030-01-01T00:00:00Z")).key == key
    changed = (_package("r-base-core", "4.2.2.20221110-2"), _package("zlib1g", "1:1.2", "b" * 64))
    assert _lock(_data(packages=changed)).key != key
    assert _lock(_data(dpkg_options=())).key != key


def test_lock_of_another_format_is_refused() -> None:
    text = _data().dumps().replace("lock-version = 1", "lock-version = 99")
    with pytest.raises(BuildError, match="format 99"):
        DebianLockData.loads(text)


# -- specs and mirrors --------------------------------------------------------
def test_requirements_are_debian_package_names() -> None:
    assert is_debian_spec(("deb:r-base-core", "deb:r-cran-irkernel"))
    assert not is_debian_spec(("numpy", "deb:r-base-core"))
    assert debian_packages(("deb:r-base-core", "deb:g++=4:12.2.0-3")) == (
        "r-base-core",
        "g++=4:12.2.0-3",
    )
    for bad in ("numpy", "deb:R-Base", "deb:", "deb:a b", "deb:x=1;rm"):
        with pytest.raises(DebianResolutionError):
            debian_packages((bad,))


def test_pins_map_to_snapshot_timestamps() -> None:
    assert snapshot_timestamp("2025-06-01") == "20250601T000000Z"
    assert snapshot_timestamp("2025-06-01T12:30:05Z") == "20250601T123005Z"
    assert snapshot_timestamp("2025-06-01T12:30:00+02:00") == "20250601T103000Z"
    with pytest.raises(DebianResolutionError):
        snapshot_timestamp("last tuesday")


def test_mirror_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBSEAL_DEBIAN_MIRROR", "snapshot")
    sources, enforced = mirror_sources("bookworm", "2025-06-01")
    assert enforced
    assert [s.line() for s in sources] == [
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/"
        "20250601T000000Z bookworm main",
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian/"
        "20250601T000000Z bookworm-updates main",
        "deb [check-valid-until=no] https://snapshot.debian.org/archive/debian-security/"
        "20250601T000000Z bookworm-security main",
    ]
    monkeypatch.setenv("NBSEAL_DEBIAN_MIRROR", "http://mirror.example/debian/")
    sources, enforced = mirror_sources("bookworm", "2025-06-01")
    assert not enforced
    assert [s.line() for s in sources] == ["deb http://mirror.example/debian bookworm main"]


def test_host_sources_read_both_formats_and_skip_third_parties(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://ftp.de.debian.org/debian bookworm main contrib\n"
        "deb-src http://ftp.de.debian.org/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example\nSuites: bookworm\nEnabled: no\n"
    )
    (tmp_path / "sources.list.d" / "nodesource.list").write_text(
        "deb https://deb.nodesource.com/node_20.x nodistro main\n"
    )
    (tmp_path / "sources.list.d" / "gcloud.list").write_text(
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
    )
    lines = [s.line() for s in host_sources("bookworm", tmp_path)]
    assert lines == [
        "deb http://ftp.de.debian.org/debian bookworm main contrib",
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_apt_list_names_map_back_to_sources() -> None:
    source = DebianSource("http://deb.debian.org/debian-security", "bookworm-security")
    assert _list_prefix(source) == "deb.debian.org_debian-security_dists_bookworm-security_"


# -- dpkg path filters ----------------------------------------------------------
def test_prune_excluded_follows_dpkg_filter_order(tmp_path: Path) -> None:
    for rel in (
        "usr/share/doc/r-base/copyright",
        "usr/share/doc/r-base/NEWS.gz",
        "usr/share/doc/gone/README",
        "usr/share/man/man1/R.1.gz",
        "usr/share/locale/locale.alias",
        "usr/share/locale/de/LC_MESSAGES/R.mo",
        "usr/bin/R",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "usr/share/man/man1/open.1.gz").symlink_to("/etc/alternatives/open.1.gz")
    options = (
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/locale/*",
        "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
    )
    assert prune_excluded(tmp_path, options) > 0
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
    assert left == [
        "usr/bin/R",
        "usr/share/doc/r-base/copyright",
        "usr/share/locale/locale.alias",
    ]
    assert not (tmp_path / "usr/share/doc/gone").exists()


# -- the .deb store -------------------------------------------------------------
def test_deb_cache_verifies_what_it_stores(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "debs")
    deb = tmp_path / "x.deb"
    deb.write_bytes(b"not really a deb")
    good = hashlib.sha256(b"not really a deb").hexdigest()
    with pytest.raises(BuildError, match="does not have the SHA-256"):
        cache.add_file(deb, "0" * 64)
    assert not list((tmp_path / "debs").iterdir())
    stored = cache.add_file(deb, good)
    assert stored == tmp_path / "debs" / f"{good}.deb"
    assert stored.read_bytes() == b"not really a deb"
    assert stored.stat().st_mode & 0o222 == 0
    # The store's copy is its own: the source file keeps its inode and mode.
    assert deb.stat().st_nlink == 1


def test_deb_cache_downloads_from_the_first_mirror_that_has_it(tmp_path: Path) -> None:
    content = b"a .deb from a mirror"
    sha = hashlib.sha256(content).hexdigest()
    cache = DebCache(tmp_path / "debs")
    with serve() as server:
        server.add("pool/x_1_all.deb", content)
        package = DebianPackage("x", "1", "all", sha, len(content), "pool/x_1_all.deb")
        path = cache.fetch(package, ["http://127.0.0.1:9/debian", f"{server.url}f"])
    assert path.read_bytes() == content


def test_deb_cache_says_where_it_looked(tmp_path: Path) -> None:
    cache = DebCache(tmp_path / "debs")
    with serve() as server:
        server.add("pool/x_1_all.deb", b"changed upstream")
        package = DebianPackage("x", "1", "all", SHA, 10, "pool/x_1_all.deb")
        with pytest.raises(BuildError) as caught:
            cache.fetch(package, ["http://127.0.0.1:9/debian", f"{server.url}f"])
    text = caught.value.render()
    assert "neither in the local store nor at any mirror" in text
    assert "127.0.0.1:9" in text
    assert "not " + SHA in text  # the mirror's file had another hash
    assert "NBSEAL_DEBIAN_MIRROR" in text
    assert not any(p.name.endswith(".deb") for p in (tmp_path / "debs").iterdir())


def test_build_offline_without_debs_or_mirror_fails_clearly(tmp_path: Path) -> None:
    data = _data(sources=(DebianSource("http://127.0.0.1:9/debian", "bookworm"),))
    backend = DebianBackend(debs=DebCache(tmp_path / "debs"), work_root=tmp_path / "work")
    with pytest.raises(BuildError, match="neither in the local store"):
        asyncio.run(backend.ensure_debs(data, Progress("r")))


# -- kernels and mounts in a root file system ----------------------------------
def _tree(root: Path, kernels: dict[str, list[str]], programs: tuple[str, ...]) -> Path:
    for name, argv in kernels.items():
        spec = root / "usr/share/jupyter/kernels" / name / "kernel.json"
        spec.parent.mkdir(parents=True)
        spec.write_text(json.dumps({"argv": argv, "display_name": name, "language": name}))
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "bin").symlink_to("usr/bin")
    for program in programs:
        (root / "usr/bin" / program).write_text("")
    for folder in ("etc", "root", "home", "tmp", "proc"):
        (root / folder).mkdir()
    (root / "etc/passwd").write_text("")
    return root


def test_kernelspec_of_a_tree(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "ir": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
            "octave": ["python", "-m", "octave_kernel", "-f", "{connection_file}"],
        },
        ("R", "python3"),
    )
    # Two kernels and no kernel=: which one is meant is asked (issue 16), not guessed.
    with pytest.raises(KernelStartError, match="holds 2 kernels") as caught:
        find_rootfs_kernel_command(tree)
    assert "kernel=ir" in caught.value.hint
    ir = find_rootfs_kernel_command(tree, "ir")
    assert ir.name == "ir"
    assert ir.render("/c.json")[-1] == "/c.json"
    octave = find_rootfs_kernel_command(tree, "octave")
    assert octave.argv[0] == "python3"  # Debian has no `python`
    with pytest.raises(KernelStartError, match="no kernel named 'julia'"):
        find_rootfs_kernel_command(tree, "julia")


def test_tree_without_kernel_or_program(tmp_path: Path) -> None:
    with pytest.raises(KernelStartError, match="holds no Jupyter kernel"):
        find_rootfs_kernel_command(_tree(tmp_path / "a", {}, ()))
    tree = _tree(tmp_path / "b", {"ir": ["R", "{connection_file}"]}, ())
    with pytest.raises(KernelStartError, match="lacks"):
        find_rootfs_kernel_command(tree)


def test_rootfs_mounts_split_the_tree_only_where_needed(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree", {}, ("R",))
    policy = SandboxPolicy(workdir=Path("/work/notebook/scratch"))
    request = LaunchRequest(
        ["R"],
        env={},
        cwd=policy.workdir,
        env_path=tree,
        socket_dir=Path("/root/.cache/nbseal/run/k1"),
        log_path=tmp_path / "log",
    )
    argv = RootfsLauncher(policy, bwrap="/usr/bin/bwrap").build_argv(
        request, files={"/etc/passwd": 7, "/etc/hosts": 8}
    )
    text = " ".join(argv)
    assert "--unshare-net" in argv
    assert f"--ro-bind {tree}/usr /usr" in text
    assert f"--ro-bind {tree} /" not in text
    assert "--symlink usr/bin /bin" in text
    # /root holds the socket directory: rebuilt, not bound.
    assert f"--ro-bind {tree}/root /root" not in text
    assert "--dir /root " in text
    assert "--perms 0111 --dir /root/.cache " in text
    assert "--bind /root/.cache/nbseal/run/k1 /root/.cache/nbseal/run/k1" in text
    # /work is not in the tree: a traverse-only parent on the tmpfs root.
    assert "--perms 0111 --dir /work " in text
    # /etc/hosts is missing in this tree, so /etc is split to create it.
    assert f"--ro-bind {tree}/etc/passwd /etc/passwd" in text
    assert "--ro-bind-data 8 /etc/hosts" in text
    assert argv.index("--remount-ro") > argv.index("--ro-bind-data")
    assert argv[-2:] == ["--", "R"]


# -- #seal describe ---------------------------------------------------------------
def test_describe_shows_the_suite_and_mirror_of_a_debian_environment() -> None:
    from nbseal.kernel.describe import describe_bundle
    from nbseal.kernel.pool import EnvironmentSlot
    from nbseal.plan import Declaration, EnvironmentSpec

    def slot(spec: EnvironmentSpec, lock: Lock | None = None) -> EnvironmentSlot:
        return EnvironmentSlot(Declaration(spec.name, spec.requirements, spec.pin), spec, lock)

    data = _data(
        sources=(
            DebianSource("http://deb.debian.org/debian", "bookworm"),
            DebianSource("http://deb.debian.org/debian", "bookworm-updates"),
        )
    )
    deb = slot(EnvironmentSpec("r", ("deb:r-base-core",), "2026-11-01"), _lock(data))
    waiting = slot(EnvironmentSpec("oct", ("deb:octave",), "2026-11-01"))
    python = slot(EnvironmentSpec("py", ("six",), "2026-11-01"))
    bundle = describe_bundle({"r": deb, "oct": waiting, "py": python}, "r", "sealed")
    rows = {
        row["environment"].split()[0]: row for row in bundle["application/vnd.nbseal.describe+json"]
    }
    assert rows["r"]["debian"]["suite"] == "bookworm"
    assert rows["r"]["debian"]["mirror"] == "http://deb.debian.org/debian"
    assert rows["r"]["debian"]["pin_enforced"] is False
    assert rows["r"]["source"].startswith(
        "Debian bookworm (amd64) from http://deb.debian.org/debian"
    )
    assert "bookworm-updates" in rows["r"]["source"]
    assert "not enforced" in rows["r"]["source"]
    assert rows["oct"]["source"] == "Debian (not resolved yet)"
    assert "source" not in rows["py"]
    assert "Debian bookworm (amd64) from http://deb.debian.org/debian" in bundle["text/plain"]
    assert "<th>source</th>" in bundle["text/html"]
    assert "<td>Debian bookworm (amd64)" in bundle["text/html"]
    only_python = describe_bundle({"py": python}, "py", "sealed")
    assert "<th>source</th>" not in only_python["text/html"]


# -- unprivileged builds ----------------------------------------------------------
def _subids(tmp_path: Path, subuid: str, subgid: str) -> tuple[Path, Path]:
    (tmp_path / "subuid").write_text(subuid)
    (tmp_path / "subgid").write_text(subgid)
    return tmp_path / "subuid", tmp_path / "subgid"


def test_subordinate_ids_are_found_by_name_or_uid() -> None:
    text = "alice:100000:65536\n1001:165536:65536\nbob:231072:1000\nbroken line\n"
    assert subid_ranges(text, "alice", 1000) == [SubidRange("alice", 100000, 65536)]
    assert subid_ranges(text, "carol", 1001) == [SubidRange("1001", 165536, 65536)]
    assert subid_ranges(text, "dave", 1002) == []


def test_missing_or_small_subordinate_id_ranges_are_named_with_the_fix(tmp_path: Path) -> None:
    files = _subids(tmp_path, "alice:100000:65536\n", "alice:100000:65536\n")
    assert unprivileged_problem("alice", 1000, files) is None
    problem = unprivileged_problem("carol", 1001, files)
    assert problem is not None
    assert problem.message == (
        f"cannot build Debian environments as carol: {files[0]} and {files[1]} grant carol "
        "no subordinate ids"
    )
    # A range no one has yet, for both files.
    assert "usermod --add-subuids 165536-231071 --add-subgids 165536-231071 carol" in problem.hint

    files = _subids(tmp_path, "alice:100000:65536\n", "")
    problem = unprivileged_problem("alice", 1000, files)
    assert problem is not None
    assert problem.message.endswith(f"{files[1]} grants alice no subordinate ids")

    files = _subids(tmp_path, "alice:100000:1000\n", "alice:100000:65536\n")
    problem = unprivileged_problem("alice", 1000, files)
    assert problem is not None
    assert "fewer than 65536 subordinate ids" in problem.message
    assert "--del-subuids 100000-100999 --add-subuids" in problem.hint


def test_root_builds_under_its_own_subordinate_ids_or_is_told_how_to_get_them(
    tmp_path: Path,
) -> None:
    files = _subids(
        tmp_path, "alice:100000:65536\nroot:1000:10\nroot:300000:65536\n", "0:400000:65536\n"
    )
    assert root_build_ids(files) == BuildIds(300000, 400000, 65536)

    files = _subids(tmp_path, "alice:100000:65536\n", "alice:100000:65536\n")
    with pytest.raises(DebianUnavailableError) as caught:
        root_build_ids(files)
    problem = caught.value
    assert problem.message == (
        f"cannot build Debian environments as root: {files[0]} and {files[1]} grant root "
        "no subordinate ids"
    )
    assert "maintainer scripts never run as host root" in (problem.context or "")
    # Root is told what to run, not to ask an administrator or to become root.
    assert problem.hint is not None
    assert problem.hint.startswith(
        "run `usermod --add-subuids 165536-231071 --add-subgids 165536-231071 root`"
    )
    assert "run nbseal as root" not in problem.hint


def _member(tar: tarfile.TarFile, name: str, kind: bytes, **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    data = attrs.pop("data", b"")
    for key, value in attrs.items():
        setattr(info, key, value)
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _tarball(path: Path, *members: tuple[str, bytes, dict[str, Any]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, attrs in members:
            _member(tar, name, kind, **attrs)
    return path


@pytest.fixture(params=["pep706", "own"])
def tar_filters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Unpack with tarfile's PEP 706 filter, and with nbseal's own checks, which
    Pythons before it use (Debian 12's 3.11.2): both must give the same tree and
    refuse the same members."""
    if request.param == "pep706" and not hasattr(tarfile, "tar_filter"):
        pytest.skip(f"this Python ({sys.version.split()[0]}) has no PEP 706 filters")
    if request.param == "own":
        monkeypatch.setattr(tree_module, "_PEP706", False)
        monkeypatch.setattr(tree_module, "_tar_filter", tree_module._own_tar_filter)
    return str(request.param)


def test_unpacked_tree_keeps_links_and_drops_devices_and_special_bits(
    tmp_path: Path, tar_filters: str
) -> None:
    archive = _tarball(
        tmp_path / "rootfs.tar",
        ("./", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./usr/bin/", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./usr/bin/perl", tarfile.REGTYPE, {"mode": 0o755, "data": b"perl", "mtime": 1000}),
        # GNU tar gives a hard link the attributes of its inode.
        (
            "./usr/bin/perl5.36.0",
            tarfile.LNKTYPE,
            {"linkname": "./usr/bin/perl", "mode": 0o755, "mtime": 1000},
        ),
        ("./usr/bin/su", tarfile.REGTYPE, {"mode": 0o4755, "data": b"su"}),
        ("./etc/", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./etc/shadow", tarfile.REGTYPE, {"mode": 0o640, "data": b"root:*:"}),
        ("./etc/motd", tarfile.REGTYPE, {"mode": 0o666, "data": b"hi"}),
        ("./usr/lib/R/etc/Renviron", tarfile.SYMTYPE, {"linkname": "/etc/R/Renviron"}),
        ("./tmp/", tarfile.DIRTYPE, {"mode": 0o1777}),
        ("./dev/", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./dev/null", tarfile.CHRTYPE, {"mode": 0o666, "devmajor": 1, "devminor": 3}),
        ("./dev/loop0", tarfile.BLKTYPE, {"mode": 0o660, "devmajor": 7, "devminor": 0}),
        ("./dev/initctl", tarfile.FIFOTYPE, {"mode": 0o600}),
        ("./dev/fd", tarfile.SYMTYPE, {"linkname": "/proc/self/fd"}),
    )
    tree = tmp_path / "tree"
    unpack_rootfs(archive, tree)

    def mode(rel: str) -> int:
        return stat.S_IMODE((tree / rel).lstat().st_mode)

    assert (tree / "usr/bin/perl").read_bytes() == b"perl"
    assert (tree / "usr/bin/perl").stat().st_mtime == 1000
    assert (tree / "usr/bin/perl5.36.0").stat().st_ino == (tree / "usr/bin/perl").stat().st_ino
    assert (mode("usr/bin/su"), mode("etc/shadow"), mode("etc/motd")) == (0o755, 0o640, 0o644)
    assert mode("tmp") == 0o755
    assert os.readlink(tree / "usr/lib/R/etc/Renviron") == "/etc/R/Renviron"
    assert sorted(p.name for p in (tree / "dev").iterdir()) == ["fd"]
    assert os.readlink(tree / "dev/fd") == "/proc/self/fd"


@pytest.mark.parametrize(
    ("name", "kind", "attrs"),
    [
        ("../escaped", tarfile.REGTYPE, {"data": b"x"}),
        ("./etc/passwd-link", tarfile.LNKTYPE, {"linkname": "../outside"}),
        ("./etc/shadow-link", tarfile.LNKTYPE, {"linkname": "/etc/shadow"}),
        # Through an absolute symlink of the tree: it would land on the host.
        ("./escape/file", tarfile.REGTYPE, {"data": b"x"}),
    ],
)
def test_unpacking_refuses_anything_outside_the_tree(
    tmp_path: Path, name: str, kind: bytes, attrs: dict[str, Any], tar_filters: str
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (tmp_path / "outside").write_text("host file")
    archive = _tarball(
        tmp_path / "rootfs.tar",
        ("./", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./escape", tarfile.SYMTYPE, {"linkname": str(host)}),
        (name, kind, attrs),
    )
    with pytest.raises(BuildError, match="cannot unpack the root file system"):
        unpack_rootfs(archive, tmp_path / "tree")
    assert list(host.iterdir()) == []
    assert (tmp_path / "outside").stat().st_nlink == 1


def test_a_hard_link_through_a_symlink_of_the_tree_is_refused(
    tmp_path: Path, tar_filters: str
) -> None:
    """The link's name is inside the tree, but the tree's own symlink leads out of it."""
    (tmp_path / "outside").write_text("host file")
    archive = _tarball(
        tmp_path / "rootfs.tar",
        ("./", tarfile.DIRTYPE, {"mode": 0o755}),
        ("./up", tarfile.SYMTYPE, {"linkname": str(tmp_path)}),
        ("./etc/grab", tarfile.LNKTYPE, {"linkname": "up/outside"}),
    )
    with pytest.raises(BuildError, match="cannot unpack the root file system"):
        unpack_rootfs(archive, tmp_path / "tree")
    assert (tmp_path / "outside").stat().st_nlink == 1


def test_configuration_goes_in_by_upload_hooks(tmp_path: Path) -> None:
    """Unprivileged, the hooks' root cannot read the scratch: mmdebstrap copies it in."""
    options = _dpkg_options(DEFAULT_DPKG_OPTIONS, tmp_path) + _normalise_hook(
        (DebianSource("http://deb.debian.org/debian", "bookworm"),), tmp_path
    )
    assert f"--setup-hook=upload {tmp_path}/dpkg-path-filters.cfg " in " ".join(options)
    assert f"--customize-hook=upload {tmp_path}/sources.list /etc/apt/sources.list" in options
    hooks = ("--setup-hook=upload ", "--customize-hook=upload ")
    assert all(o.startswith(hooks) for o in options if str(tmp_path) in o), options


def test_a_build_room_is_readable_by_the_build_and_its_outputs_are_the_build_s() -> None:
    """apt reads the inputs as the build's root (a sub-uid, "other" to the user)."""
    builder = BuildUser.current()
    room = builder.open_room("test")
    try:
        for folder in (room.inputs, room.outputs):
            assert folder.parent == Path("/tmp")
            assert stat.S_IMODE(folder.stat().st_mode) == 0o755
        assert room.inputs.stat().st_uid == os.getuid()
        assert room.outputs.stat().st_uid == builder.ids.uid
        # The build writes its outputs as the namespace's root, private folders too.
        partial = room.outputs / "lists" / "partial"
        done = subprocess.run(
            [
                *userns_command(builder.ids.uid, builder.ids.gid, builder.ids.count),
                "sh",
                "-c",
                f"mkdir -p {partial} && chmod 0700 {partial} && : > {partial}/x",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    finally:
        builder.close_room(room)
    assert not room.inputs.exists()
    assert not room.outputs.exists()
