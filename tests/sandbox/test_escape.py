"""A sealed kernel cannot reach what the policy does not grant.

Each test runs code that would succeed in an unsealed kernel and asserts the
exact failure the sandbox gives instead.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbseal.paths import cache_root
from nbseal.sandbox.launch import LaunchRequest
from nbseal.sandbox.mounts import SANDBOX_HOME, base_python_prefixes
from tests.sandbox.conftest import FAKE_SECRETS
from tests.sandbox.helpers import LoopThread, SealedKernel

REPO = Path(__file__).resolve().parents[2]


def inside(kernel: SealedKernel, expression: str) -> Any:
    """Evaluate ``expression`` in the kernel and bring the value back as JSON."""
    return json.loads(kernel.value(f"__import__('json').dumps({expression})"))


@pytest.fixture(scope="module")
def secrets_outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Files the kernel must not read: in a temp dir, in the real home, in the repo."""
    secret_dir = tmp_path_factory.mktemp("secret")
    in_tmp = secret_dir / "id_rsa"
    in_tmp.write_text("not for the kernel")
    in_home = Path.home() / f".nbseal-sandbox-test-{uuid.uuid4().hex}"
    in_home.write_text("not for the kernel")
    try:
        yield {"tmp": in_tmp, "home": in_home, "repo": REPO / "pyproject.toml"}
    finally:
        in_home.unlink()


@pytest.mark.parametrize("where", ["tmp", "home", "repo"])
def test_host_files_are_absent(
    sealed: SealedKernel, secrets_outside: dict[str, Path], where: str
) -> None:
    path = secrets_outside[where]
    assert path.read_text()  # the host can read it
    assert inside(sealed, f"_read({str(path)!r})") == "FileNotFoundError ENOENT"


def test_home_holds_only_the_way_to_the_base_python(
    sealed: SealedKernel, default_env: Path
) -> None:
    home = Path.home()
    needed = {
        prefix.relative_to(home).parts[0]
        for prefix in base_python_prefixes(default_env)
        if home in prefix.parents
    }
    if needed:
        # Reachable (the base Python lives there) but not listable.
        assert inside(sealed, f"_outcome(lambda: _os.listdir({str(home)!r}))") == (
            "PermissionError EACCES"
        )
        assert inside(sealed, f"_outcome(lambda: _os.chmod({str(home)!r}, 0o755))") == (
            "OSError EROFS"
        )
    else:
        assert inside(sealed, f"_read({str(home)!r})") == "FileNotFoundError ENOENT"
    assert inside(sealed, "_os.environ['HOME']") == SANDBOX_HOME
    # A fresh, empty home: IPython creates its profile there at start.
    assert set(inside(sealed, "_os.listdir(_os.environ['HOME'])")) <= {".ipython"}


def test_base_python_site_packages_are_hidden(sealed: SealedKernel, default_env: Path) -> None:
    for prefix in base_python_prefixes(default_env):
        for site in prefix.glob("lib/python3*/site-packages"):
            assert inside(sealed, f"_os.listdir({str(site)!r})") == []


def test_environment_is_read_only(sealed: SealedKernel, default_env: Path) -> None:
    site = inside(sealed, "__import__('site').getsitepackages()[0]")
    assert isinstance(site, str)
    assert site.startswith(str(default_env))
    assert inside(sealed, f"_write({site + '/evil.py'!r})") == "OSError EROFS"
    assert inside(sealed, f"_outcome(lambda: _os.mkdir({site + '/evil'!r}))") == "OSError EROFS"
    cfg = str(default_env / "pyvenv.cfg")
    assert inside(sealed, f"_outcome(lambda: _os.unlink({cfg!r}))") == "OSError EROFS"
    assert inside(sealed, f"_outcome(lambda: _os.chmod({cfg!r}, 0o666))") == "OSError EROFS"
    assert inside(sealed, f"_write({cfg!r})") == "OSError EROFS"


def test_system_files_are_read_only(sealed: SealedKernel) -> None:
    assert inside(sealed, "_write('/usr/lib/evil')") == "OSError EROFS"
    assert inside(sealed, "_write('/evil')") == "OSError EROFS"
    # Read-only mounts (EROFS), or files the sandbox's user does not own.
    assert inside(sealed, "_write('/etc/passwd')") in {"OSError EROFS", "PermissionError EACCES"}


def test_etc_holds_only_what_a_kernel_needs(sealed: SealedKernel) -> None:
    expected = {"passwd", "group", "hosts", "hostname"}
    expected |= {
        n for n in ("ld.so.cache", "localtime", "fonts", "ssl", "pki") if Path("/etc", n).exists()
    }
    assert set(inside(sealed, "_os.listdir('/etc')")) == expected
    if Path("/etc/fonts/fonts.conf").exists():
        # Fontconfig finds its configuration: no "Cannot load default config file".
        assert inside(sealed, "_os.path.exists('/etc/fonts/fonts.conf')") is True
    passwd = inside(sealed, "open('/etc/passwd').read()")
    assert isinstance(passwd, str)
    assert "nbseal:x:" in passwd
    assert passwd != Path("/etc/passwd").read_text()


def test_certificates_time_zones_and_locale_are_there_and_keys_are_not(
    sealed: SealedKernel,
) -> None:
    """What real notebooks read offline (issue 16): CA certificates, zoneinfo, a UTF-8 locale."""
    if Path("/etc/ssl/certs").is_dir():
        code = "__import__('ssl').create_default_context().cert_store_stats()['x509_ca']"
        assert inside(sealed, code) > 0
        assert inside(sealed, "_os.path.exists('/etc/ssl/private')") is False
    code = "str(__import__('zoneinfo').ZoneInfo('Europe/Paris'))"
    assert inside(sealed, code) == "Europe/Paris"
    code = "(__import__('locale').setlocale(0 + __import__('locale').LC_ALL, ''))"
    assert inside(sealed, code) in {"C.UTF-8", "C.utf8"}


def test_store_shows_only_the_kernel_s_environment(sealed: SealedKernel, default_env: Path) -> None:
    store = default_env.parent
    assert len(os.listdir(store)) > 1  # the host's store holds more: locks, usage, ...
    # The way to the environment can be walked, not listed.
    for folder in (store, cache_root()):
        listing = inside(sealed, f"_outcome(lambda: _os.listdir({str(folder)!r}))")
        assert listing == "PermissionError EACCES"
    assert inside(sealed, f"_os.path.isdir({str(default_env)!r})") is True


def test_host_mounts_are_exactly_the_granted_ones(sealed: SealedKernel, default_env: Path) -> None:
    """Every mount backed by a host file system, read from the kernel's mountinfo."""
    lines = inside(sealed, "open('/proc/self/mountinfo').read().splitlines()")
    assert isinstance(lines, list)
    host_backed = {}
    for line in lines:
        fields, _, tail = line.partition(" - ")
        fstype = tail.split()[0]
        if fstype in {"tmpfs", "proc", "devtmpfs", "devpts", "mqueue"}:
            continue
        parts = fields.split()
        host_backed[parts[4]] = "ro" if "ro" in parts[5].split(",") else "rw"
    expected = {"/usr": "ro", str(default_env): "ro"}
    for name in (
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/etc/fonts",
        "/etc/ssl/certs",
        "/etc/ssl/openssl.cnf",
        "/etc/pki/tls/certs",
        "/etc/pki/ca-trust/extracted",
    ):
        if Path(name).exists():
            expected[name] = "ro"
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if Path(top).is_dir() and not Path(top).is_symlink():
            expected[top] = "ro"
    for prefix in base_python_prefixes(default_env):
        expected[str(prefix)] = "ro"
    expected[str(sealed.policy.workdir)] = "rw"
    expected[str(sealed.sub.socket_dir)] = "rw"
    assert host_backed == expected


def test_host_loopback_is_not_the_sandbox_s(sealed: SealedKernel, host_server: str) -> None:
    with urllib.request.urlopen(host_server, timeout=5) as response:  # the server works
        assert response.read() == b"hello from the host"
    port = int(host_server.rsplit(":", 1)[1].strip("/"))
    code = (
        "_outcome(lambda: __import__('socket').create_connection"
        f"(('127.0.0.1', {port}), timeout=5))"
    )
    assert inside(sealed, code) == "ConnectionRefusedError ECONNREFUSED"


def test_no_route_out(sealed: SealedKernel) -> None:
    # 192.0.2.1 is TEST-NET-1: never routed, but only a missing route fails at once.
    code = "_outcome(lambda: __import__('socket').create_connection(('192.0.2.1', 80), timeout=5))"
    assert inside(sealed, code) == "OSError ENETUNREACH"


def test_name_resolution_fails(sealed: SealedKernel) -> None:
    out = sealed.execute("import socket\nsocket.getaddrinfo('pypi.org', 443)")
    assert out.status == "error"
    assert out.ename == "gaierror"


def test_host_environment_variables_do_not_leak(sealed: SealedKernel) -> None:
    env = inside(sealed, "dict(_os.environ)")
    assert isinstance(env, dict)
    for name, value in FAKE_SECRETS.items():
        assert name not in env
        assert all(value not in v for v in env.values())
    launcher_set = set(sealed.launcher.environment(_request(sealed)))
    # Set by bwrap (PWD) and by ipykernel itself at start.
    kernel_set = {"PWD", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "GIT_PAGER", "PAGER"}
    kernel_set |= {"MPLBACKEND", "PYDEVD_USE_FRAME_EVAL", "TERM"}
    assert set(env) - launcher_set - kernel_set == set()


def _request(kernel: SealedKernel) -> LaunchRequest:
    return LaunchRequest(
        [],
        env=kernel.sub.launch_env,
        cwd=kernel.policy.workdir,
        env_path=kernel.env_path,
        socket_dir=kernel.sub.socket_dir,
        log_path=kernel.sub.log_path,
    )


def test_host_processes_are_invisible(sealed: SealedKernel) -> None:
    assert inside(sealed, "_os.getpid()") == 2
    assert inside(sealed, "sorted(int(p) for p in _os.listdir('/proc') if p.isdigit())") == [1, 2]
    me = os.getpid()
    assert me > 2
    assert inside(sealed, f"_outcome(lambda: _os.kill({me}, 0))") == "ProcessLookupError ESRCH"


def test_kernel_runs_without_privileges(sealed: SealedKernel) -> None:
    assert inside(sealed, "_os.getuid()") != 0
    status = inside(sealed, "open('/proc/self/status').read()")
    assert isinstance(status, str)
    caps = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    assert caps["CapEff"] == "0000000000000000"
    # No nested user namespace in which to gain capabilities back. Tried in a
    # single-threaded child: unshare(CLONE_NEWUSER) refuses threaded callers.
    probe = (
        "import ctypes, errno; libc = ctypes.CDLL(None, use_errno=True); "
        "print(libc.unshare(0x10000000), errno.errorcode[ctypes.get_errno()])"
    )
    code = (
        "__import__('subprocess').run([__import__('sys').executable, '-c', "
        f"{probe!r}], capture_output=True, text=True).stdout.split()"
    )
    # Refused by the seccomp filter (EPERM) before the kernel's own limit.
    assert inside(sealed, code) == ["-1", "EPERM"]


# A kernel of 2018 on the CPython current then, as `nbseal adopt` gives an old
# notebook (python=auto): pyenv keeps that interpreter inside root's home.
PYENV36 = Path("/root/.pyenv/versions/3.6.15")
CELL36 = "#seal pin 2018-06-01\n#seal env old <- six python=auto"


@pytest.fixture(scope="module")
def old_env() -> Path:
    import asyncio

    from nbseal.directives import parse_cell
    from nbseal.environments import realize
    from nbseal.plan import NotebookState
    from nbseal.progress import Progress
    from nbseal.store import EnvironmentStore

    state = NotebookState()
    for directive in parse_cell(CELL36).directives:
        state.apply(directive)
    spec = state.environments["old"].spec()
    return asyncio.run(realize(spec, EnvironmentStore(), Progress("old"))).path


@pytest.fixture(scope="module")
def sealed_old(loop_thread: LoopThread, runtime_dir: Path, old_env: Path) -> Iterator[SealedKernel]:
    from nbseal.sandbox import SandboxPolicy
    from tests.sandbox.conftest import PROBES

    workdir = Path(tempfile.mkdtemp(prefix="nbseal-work-"))
    kernel = SealedKernel(loop_thread, old_env, SandboxPolicy(workdir=workdir), runtime_dir)
    kernel.start()
    try:
        assert kernel.execute(PROBES).status == "ok"
        yield kernel
    finally:
        kernel.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.skipif(
    not os.access(PYENV36, os.R_OK | os.X_OK),  # not is_dir: /root may be closed to this user
    reason="needs pyenv's CPython 3.6.15, readable by this user (as root on CI)",
)
def test_a_kernel_on_pyenv_s_python_sees_only_that_interpreter_s_prefix(
    sealed_old: SealedKernel, old_env: Path
) -> None:
    assert inside(sealed_old, "__import__('sys').version_info[:2]") == [3, 6]
    assert base_python_prefixes(old_env) == [PYENV36]
    mounts = inside(sealed_old, "open('/proc/self/mountinfo').read()")
    line = next(m for m in mounts.splitlines() if m.split()[4] == str(PYENV36))
    assert "ro" in line.split()[5].split(","), "the base prefix is read-only"
    # Nothing else of root's home: not listable, other files and interpreters absent.
    for folder in ("/root", "/root/.pyenv", "/root/.pyenv/versions"):
        assert inside(sealed_old, f"_outcome(lambda: _os.listdir({folder!r}))") == (
            "PermissionError EACCES"
        )
    assert Path("/root/.pyenv/version").is_file()  # the host has it
    for path in (
        "/root/.pyenv/version",
        "/root/.pyenv/versions/3.11.7/bin/python3.11",
        "/root/.pyenv/shims/python3.6",
        "/root/.bashrc",
    ):
        assert inside(sealed_old, f"_read({path!r})") == "FileNotFoundError ENOENT", path
    # The interpreter's own files are there, read-only; its site-packages hidden.
    assert inside(sealed_old, f"_read({str(PYENV36 / 'lib/python3.6/os.py')!r})") == "ok"
    assert inside(sealed_old, f"_write({str(PYENV36 / 'lib/python3.6/evil.py')!r})") == (
        "OSError EROFS"
    )
    site = PYENV36 / "lib" / "python3.6" / "site-packages"
    assert inside(sealed_old, f"_os.listdir({str(site)!r})") == []
