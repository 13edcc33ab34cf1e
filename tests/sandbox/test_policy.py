"""What a policy grants reaches the kernel, and only as granted."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbseal.errors import KernelStartError
from nbseal.sandbox import SandboxPolicy, Share
from nbseal.sandbox.identity import sandbox_identity
from tests.sandbox.helpers import SealedKernel

Start = Callable[[SandboxPolicy], SealedKernel]


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="nbseal-share-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_workdir_is_the_writable_cwd(start_sealed: Start, workdir: Path) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    assert kernel.value("_os.getcwd()") == str(workdir)
    assert kernel.value("_write('result.txt', 'made inside')") == "ok"
    assert (workdir / "result.txt").read_text() == "made inside"


def test_shares_are_bound_as_granted(start_sealed: Start, workdir: Path, host_dir: Path) -> None:
    readable, writable = host_dir / "ro", host_dir / "rw"
    readable.mkdir()
    writable.mkdir()
    sandbox_identity().hand_over(writable)  # as root, the sandbox runs as another uid
    (readable / "in.txt").write_text("shared")
    (host_dir / "unshared.txt").write_text("not shared")
    policy = SandboxPolicy(workdir=workdir, shares=(Share(readable, "ro"), Share(writable, "rw")))
    kernel = start_sealed(policy)
    assert kernel.value(f"open({str(readable / 'in.txt')!r}).read()") == "shared"
    assert kernel.value(f"_write({str(readable / 'out.txt')!r})") == "OSError EROFS"
    assert kernel.value(f"_write({str(writable / 'out.txt')!r}, 'from kernel')") == "ok"
    assert (writable / "out.txt").read_text() == "from kernel"
    assert not (readable / "out.txt").exists()
    # The share's parent is not shared with it.
    assert kernel.value(f"_read({str(host_dir / 'unshared.txt')!r})") == (
        "FileNotFoundError ENOENT"
    )


def test_readonly_binds_show_a_host_file_under_another_name(
    start_sealed: Start, workdir: Path, host_dir: Path
) -> None:
    data = host_dir / "sha256-abc"
    data.write_text("1,2,3\n")
    policy = SandboxPolicy(workdir=workdir, readonly_binds=((data, workdir / "data.csv"),))
    kernel = start_sealed(policy)
    assert kernel.value("open('data.csv').read()") == "1,2,3"
    assert kernel.value("_write('data.csv')") == "OSError EROFS"
    assert kernel.value(f"_read({str(data)!r})") == "FileNotFoundError ENOENT"


def test_network_policy_reaches_the_host(
    start_sealed: Start, workdir: Path, host_server: str
) -> None:
    kernel = start_sealed(SandboxPolicy(workdir=workdir, network=True))
    code = f"__import__('urllib.request').request.urlopen({host_server!r}, timeout=5).read()"
    assert kernel.value(code) == "b'hello from the host'"
    # Resolver files come along, the host's accounts still do not.
    assert kernel.value("_read('/etc/resolv.conf')") in {"ok", "FileNotFoundError ENOENT"}
    assert "nbseal:x:" in kernel.value("open('/etc/passwd').read()")


def test_a_missing_share_is_reported_before_launch(
    start_sealed: Start, workdir: Path, host_dir: Path
) -> None:
    missing = host_dir / "nope"
    with pytest.raises(KernelStartError) as caught:
        start_sealed(SandboxPolicy(workdir=workdir, shares=(Share(missing, "ro"),)))
    assert str(missing) in caught.value.context


@pytest.mark.parametrize(
    "make",
    [
        lambda: SandboxPolicy(workdir=Path("relative")),
        lambda: Share(Path("data"), "ro"),
        lambda: Share(Path("/data"), "rx"),  # type: ignore[arg-type]
        lambda: SandboxPolicy(workdir=Path("/w"), readonly_binds=((Path("/a"), Path("b")),)),
    ],
)
def test_policy_rejects_paths_it_cannot_bind(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"must be an absolute path|mode is"):
        make()


def test_policy_describes_its_grants(tmp_path: Path) -> None:
    policy = SandboxPolicy(workdir=tmp_path, network=True, shares=(Share(Path("/data"), "rw"),))
    assert policy.describe() == [
        "network: allowed",
        f"working directory (writable): {tmp_path}",
        "shared (rw): /data",
        "limits: 1024 processes, memory 8 GiB, tmp 2 GiB each",
    ]


@pytest.mark.parametrize(
    ("inside", "why"),
    [
        ("/work/x", "inside a host path"),  # in the (writable, host) working directory
        ("/usr/x", "in the system's"),
        ("/run/nb/a/b", "inside another link"),  # through the link /run/nb/a
    ],
)
def test_links_are_never_made_where_bwrap_would_write_the_host(inside: str, why: str) -> None:
    links = ((Path("/run/nb/a"), Path("/data/a")), (Path(inside), Path("/data/b")))
    with pytest.raises(ValueError, match=why):
        SandboxPolicy(workdir=Path("/work"), links=links)
