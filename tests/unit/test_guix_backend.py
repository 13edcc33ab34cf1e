"""The Guix backend without Guix: command lines, the lock, and a stand-in `guix`.

Guix is not installed where these tests run. What needs it for real (the
profile build and `guix shell --container`) is replaced by a small script
named `guix` that logs its arguments and answers as Guix would; everything
nbseal does around it (the argv, parsing, the lock, the store) is real.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from nbseal.backends import backend_for
from nbseal.backends.guix import (
    GuixBackend,
    GuixLockData,
    GuixPackage,
    build_argv,
    channel_commits,
    describe_argv,
    guix_kernel_command,
    manifest_argv,
    parse_show,
    show_argv,
)
from nbseal.environments import realize, resolve
from nbseal.errors import (
    BuildError,
    GuixResolutionError,
    GuixUnavailableError,
    NbsealError,
)
from nbseal.lock import Lock
from nbseal.plan import EnvironmentSpec, host_platform, plan_notebook
from nbseal.progress import Progress
from nbseal.sandbox.guix import GuixLauncher, container_argv, find_guix
from nbseal.sandbox.launch import LaunchRequest
from nbseal.sandbox.policy import SandboxPolicy, Share
from nbseal.store import EnvironmentStore
from tests.fakeguix import CHANNELS, FULL, calls, install_fake_guix


@pytest.fixture
def fake_guix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `guix` on PATH; returns its log (one JSON argv per line)."""
    argv = [
        "/gnu/store/xyz-python/bin/python3",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    monkeypatch.setenv("NBSEAL_CACHE_DIR", str(tmp_path / "cache"))
    return install_fake_guix(tmp_path, monkeypatch, argv)


def spec(pin: str = "guix-commit:abcdef0") -> EnvironmentSpec:
    return EnvironmentSpec("py", ("guix:python", "guix:python-ipykernel"), pin)


# ---------------------------------------------------------------------------
# no guix
# ---------------------------------------------------------------------------
def test_without_guix_the_error_says_so_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    declared = plan_notebook(
        [
            "#seal pin 2025-01-01\n;;guix pin abcdef0\n"
            ";;guix environment py <- python python-ipykernel"
        ]
    ).environments["py"]
    with pytest.raises(GuixUnavailableError) as info:
        asyncio.run(resolve(declared.spec(), EnvironmentStore(tmp_path), Progress("py")))
    error = info.value
    assert isinstance(error, BuildError)
    assert isinstance(error, NbsealError)
    assert error.ename == "GuixUnavailableError"
    assert error.message == "guix is not installed on this machine"
    assert ";;guix environment py <- python python-ipykernel" in error.context
    assert ";;guix pin abcdef0" in error.context
    assert "install Guix" in error.hint
    assert "#seal env NAME <- ..." in error.hint
    assert "deb:NAME" in error.hint
    assert not (tmp_path / "envs").exists()


def test_without_guix_a_stored_lock_cannot_be_built_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GuixUnavailableError) as info:
        asyncio.run(
            GuixBackend(roots=tmp_path / "roots").build(lock(), tmp_path / "dest", Progress("x"))
        )
    assert "python python-ipykernel" in info.value.context
    assert not (tmp_path / "dest").exists()


def test_find_guix_finds_it_on_path(fake_guix: Path) -> None:
    assert Path(find_guix()).name == "guix"


# ---------------------------------------------------------------------------
# pure parts
# ---------------------------------------------------------------------------
def test_command_lines() -> None:
    channels, manifest, root = Path("/w/channels.scm"), Path("/w/manifest.scm"), Path("/r/k")
    assert describe_argv("guix", None) == ["guix", "describe", "--format=channels"]
    assert describe_argv("guix", "abcdef0") == [
        "guix",
        "time-machine",
        "-q",
        "--commit=abcdef0",
        "--",
        "describe",
        "--format=channels",
    ]
    machine = ["guix", "time-machine", "--channels=/w/channels.scm", "--"]
    assert manifest_argv("guix", channels, ["python", "glib:bin"]) == [
        *machine,
        "shell",
        "--export-manifest",
        "python",
        "glib:bin",
    ]
    assert show_argv("guix", channels, ["python"]) == [*machine, "show", "python"]
    assert build_argv("guix", channels, manifest, root) == [
        *machine,
        "shell",
        "--manifest=/w/manifest.scm",
        "--root=/r/k",
        "--",
        "true",
    ]


def test_the_container_command_line_follows_the_policy() -> None:
    policy = SandboxPolicy(
        workdir=Path("/run/w"),
        network=True,
        shares=(Share(Path("/home/u/in"), "ro"), Share(Path("/home/u/out"), "rw")),
        readonly_binds=((Path("/cache/data/ab12"), Path("/run/w/iris.csv")),),
    )
    kernel = ["python3", "-m", "ipykernel_launcher", "-f", "/run/k1/connection.json"]
    argv = container_argv(
        "/usr/bin/guix",
        Path("/gnu/store/abc-profile"),
        kernel,
        policy=policy,
        socket_dir=Path("/run/k1"),
        preserve=["PYDEVD_DISABLE_FILE_VALIDATION"],
    )
    assert argv == [
        "/usr/bin/guix",
        "shell",
        "--container",
        "--network",
        "--share=/run/k1",
        "--expose=/home/u/in",
        "--share=/home/u/out",
        "--expose=/cache/data/ab12=/run/w/iris.csv",
        "--profile=/gnu/store/abc-profile",
        "--preserve=^PYDEVD_DISABLE_FILE_VALIDATION$",
        "--",
        *kernel,
    ]
    sealed = container_argv(
        "guix",
        Path("/p"),
        ["k"],
        policy=SandboxPolicy(workdir=Path("/w")),
        socket_dir=Path("/s"),
    )
    assert sealed == ["guix", "shell", "--container", "--share=/s", "--profile=/p", "--", "k"]
    unsealed = container_argv(
        "guix", Path("/p"), ["k"], policy=policy, socket_dir=Path("/s"), container=False
    )
    assert unsealed == ["guix", "shell", "--profile=/p", "--", "k"]


def test_guix_show_and_channels_are_read() -> None:
    shown = (
        "name: python\nversion: 3.11.11\noutputs:\n+ out: everything\n+ tk: tkinter\n"
        "description: High-level programming language\n\n"
        "name: python\nversion: 3.10.7\noutputs:\n+ out: everything\n\n"
        "name: python-ipykernel\nversion: 6.29.5\ndependencies: python-ipython@8.22\n"
    )
    packages = parse_show(shown, ["python-ipykernel", "python", "python@3.10", "python:tk"])
    assert packages == (
        GuixPackage("python", "3.10.7"),
        GuixPackage("python", "3.11.11"),
        GuixPackage("python-ipykernel", "6.29.5"),
    )
    with pytest.raises(GuixResolutionError, match=r"no package 'python@2\.7'"):
        parse_show(shown, ["python@2.7"])
    two = CHANNELS.format(commit=FULL) + '(channel (name \'science) (commit "0123abcd"))'
    assert channel_commits(two) == {"guix": FULL, "science": "0123abcd"}


def lock(pin: str = "guix-commit:abcdef0") -> Lock:
    data = GuixLockData(
        CHANNELS.format(commit=FULL),
        '(specifications->manifest (list "python" "python-ipykernel"))\n',
        (GuixPackage("python", "3.11.11"), GuixPackage("python-ipykernel", "6.29.5")),
    )
    return Lock(
        "guix", ("guix:python", "guix:python-ipykernel"), "", host_platform(), pin, data.dumps()
    )


def test_the_lock_holds_channels_manifest_and_versions() -> None:
    locked = lock()
    data = GuixLockData.loads(locked.pylock)
    assert channel_commits(data.channels) == {"guix": FULL}
    assert data.manifest.startswith("(specifications->manifest")
    assert [(p.name, p.version) for p in locked.packages()] == [
        ("python", "3.11.11"),
        ("python-ipykernel", "6.29.5"),
    ]
    assert locked.version_of("python-ipykernel") == "6.29.5"
    assert Lock.from_json(json.loads(locked.dumps())) == locked
    assert f"guix {FULL[:12]}" in locked.pylock.splitlines()[0]
    with pytest.raises(BuildError, match="format 2"):
        GuixLockData.loads(locked.pylock.replace("lock-version = 1", "lock-version = 2"))


# ---------------------------------------------------------------------------
# against the stand-in guix
# ---------------------------------------------------------------------------
def test_resolve_pins_the_channels_and_locks_the_versions(fake_guix: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    locked = asyncio.run(backend_for("guix").resolve(spec(), work, Progress("py")))
    assert locked.backend == "guix"
    assert locked.python == ""
    assert locked.exclude_newer == "guix-commit:abcdef0"
    assert locked.requirements == ("guix:python", "guix:python-ipykernel")
    data = GuixLockData.loads(locked.pylock)
    assert channel_commits(data.channels) == {"guix": "abcdef0".ljust(40, "0")}
    assert '"python" "python-ipykernel"' in data.manifest
    assert [(p.name, p.version) for p in locked.packages()] == [
        ("python", "3.11.11"),
        ("python-ipykernel", "3.11.11"),
    ]
    channels = f"--channels={work / 'channels.scm'}"
    assert calls(fake_guix) == [
        ["time-machine", "-q", "--commit=abcdef0", "--", "describe", "--format=channels"],
        [
            "time-machine",
            channels,
            "--",
            "shell",
            "--export-manifest",
            "python",
            "python-ipykernel",
        ],
        ["time-machine", channels, "--", "show", "python", "python-ipykernel"],
    ]


def test_an_unpinned_environment_takes_the_guix_in_use(fake_guix: Path, tmp_path: Path) -> None:
    locked = asyncio.run(
        GuixBackend().resolve(spec("2026-01-01T00:00:00Z"), tmp_path / "w", Progress("py"))
    )
    assert calls(fake_guix)[0] == ["describe", "--format=channels"]
    assert locked.exclude_newer == "2026-01-01T00:00:00Z"


def test_resolution_failures_say_what_guix_said(fake_guix: Path, tmp_path: Path) -> None:
    with pytest.raises(GuixResolutionError) as bad_commit:
        asyncio.run(GuixBackend().resolve(spec("guix-commit:deadbee"), tmp_path, Progress("py")))
    assert "at commit deadbee" in bad_commit.value.message
    assert "no match for id" in bad_commit.value.context
    assert "--commit=deadbee" in bad_commit.value.context
    missing = EnvironmentSpec("x", ("guix:no-such-package",), "guix-commit:abcdef0")
    with pytest.raises(GuixResolutionError) as unknown:
        asyncio.run(GuixBackend().resolve(missing, tmp_path, Progress("x")))
    assert "package not found" in unknown.value.context
    assert "guix search" in unknown.value.hint


def test_realize_builds_a_profile_once_and_finds_its_kernel(
    fake_guix: Path, tmp_path: Path
) -> None:
    store = EnvironmentStore(tmp_path / "store")
    progress = Progress("py")
    seen: list[str] = []
    progress.subscribe(lambda event: seen.append(event.step))
    built = asyncio.run(realize(spec(), store, progress))
    assert not built.reused
    assert built.lock.backend == "guix"
    assert (built.path / "channels.scm").read_text().count("(commit") == 1
    assert "python-ipykernel" in (built.path / "manifest.scm").read_text()
    profile = Path(os.environ["FAKE_GUIX_PROFILE"])
    assert (built.path / "profile").resolve() == profile
    # The GC root lives outside the store entry, whose path changed on rename.
    root = tmp_path / "cache" / "guix" / "roots" / built.lock.key
    assert root.resolve() == profile
    assert "building profile with 2 packages..." in seen
    # Built in the store's staging folder, from the lock's channels and manifest.
    staging = f"{store.root}/.build-{built.lock.key}-"
    build = calls(fake_guix)[-1]
    assert build[0] == "time-machine"
    assert build[1].startswith(f"--channels={staging}")
    assert build[1].endswith("/channels.scm")
    assert build[2:] == [
        "--",
        "shell",
        f"--manifest={Path(build[1].split('=', 1)[1]).parent / 'manifest.scm'}",
        f"--root={root}",
        "--",
        "true",
    ]
    command = guix_kernel_command(built.path)
    assert command.name == "python3"
    assert command.argv[0] == "/gnu/store/xyz-python/bin/python3"
    assert command.interrupt_mode == "message"
    again = asyncio.run(realize(spec(), store, Progress("py")))
    assert again.reused
    assert again.path == built.path


def test_a_failed_build_leaves_nothing_in_the_store(
    fake_guix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GUIX_FAIL", "1")
    store = EnvironmentStore(tmp_path / "store")
    with pytest.raises(BuildError) as info:
        asyncio.run(realize(spec(), store, Progress("py")))
    assert "could not build" in info.value.message
    assert "xyz-python.drv' failed" in info.value.context
    assert store.entries() == []
    assert not list(store.root.glob(".build-*"))


def test_a_profile_without_a_kernel_is_refused(
    fake_guix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "gnu" / "store" / "empty-profile"
    empty.mkdir(parents=True)
    monkeypatch.setenv("FAKE_GUIX_PROFILE", str(empty))
    with pytest.raises(BuildError) as info:
        asyncio.run(realize(spec(), EnvironmentStore(tmp_path / "store"), Progress("py")))
    assert "holds no Jupyter kernel" in info.value.message
    assert "python-ipykernel" in info.value.hint


def test_the_launcher_runs_the_kernel_through_guix_shell(fake_guix: Path, tmp_path: Path) -> None:
    env_path = tmp_path / "env"
    env_path.mkdir()
    (env_path / "profile").symlink_to(os.environ["FAKE_GUIX_PROFILE"])
    workdir, sockets = tmp_path / "work", tmp_path / "k1"
    workdir.mkdir()
    sockets.mkdir()
    probe = "import os; open('seen', 'w').write(os.getcwd() + ' ' + os.environ['KVAR'])"
    request = LaunchRequest(
        [sys.executable, "-c", probe],
        env={"KVAR": "from-kernelspec"},
        cwd=workdir,
        env_path=env_path,
        socket_dir=sockets,
        log_path=sockets / "kernel.log",
    )
    launcher = GuixLauncher(SandboxPolicy(workdir=workdir))

    async def run() -> int:
        process = await launcher.launch(request)
        return await process.wait()

    assert asyncio.run(run()) == 0, (sockets / "kernel.log").read_text()
    assert (workdir / "seen").read_text() == f"{workdir} from-kernelspec"
    (argv,) = calls(fake_guix)
    assert argv == [
        "shell",
        "--container",
        f"--share={sockets}",
        f"--profile={os.environ['FAKE_GUIX_PROFILE']}",
        "--preserve=^KVAR$",
        "--",
        *request.argv,
    ]
    assert launcher.sealed
    assert not GuixLauncher(SandboxPolicy(workdir=workdir), sealed=False).sealed
