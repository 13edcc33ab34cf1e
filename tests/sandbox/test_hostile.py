"""A hostile kernel against the seal: host root, the host's keyring, denied syscalls.

Each attack is paired with a control on the host that shows the same action
works without the sandbox, so a test fails if the sandbox stops stopping it.
Run as root, these check that a root nbseal gives its kernels no host root;
``test_as_user.py`` runs this file again as a regular user.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pyseccomp
import pytest

from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.seccomp import CLONE_NEWUSER, PROFILE, TIOCLINUX, TIOCSTI
from tests.sandbox.helpers import SealedKernel

Start = Callable[..., SealedKernel]
# An errno no real call returns here: a denial by the filter is told apart
# from a call that fails on its own.
MARK = 133  # EHWPOISON (Python's errno module does not name it)

SYSCALL_PROBE = """
import ctypes as _ct
_libc = _ct.CDLL(None, use_errno=True)
_libc.syscall.restype = _ct.c_long
def _sys(nr, *args):
    _ct.set_errno(0)
    result = _libc.syscall(_ct.c_long(nr), *(_ct.c_long(a) for a in args))
    return [result, _ct.get_errno() if result == -1 else 0]
"""


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_kernel_holds_no_host_privilege_seen_from_the_host(sealed: SealedKernel) -> None:
    """The kernel's host /proc entry: an unprivileged uid, no capability, no_new_privs, seccomp."""
    pid = sealed.kernel_pid()
    assert pid is not None
    status = _status(pid)
    identity = sandbox_identity()
    assert identity.host_uid != 0
    assert status["Uid"].split() == [str(identity.host_uid)] * 4
    assert status["Gid"].split() == [str(identity.host_gid)] * 4
    assert status["Groups"].split() in ([], [str(identity.host_gid)])
    for caps in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[caps], 16) == 0, caps
    if identity.drops:  # root's bounding set is emptied too
        assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a filter is loaded


@pytest.mark.parametrize(
    "path",
    [
        "/proc/sys/kernel/printk_ratelimit_burst",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/vm/drop_caches",
        "/proc/sysrq-trigger",
    ],
)
def test_host_wide_proc_files_cannot_be_written(sealed: SealedKernel, path: str) -> None:
    readable = os.access(path, os.R_OK)  # some are write-only (mode 0200)
    before = Path(path).read_text() if readable else ""
    outcome = sealed.value(f"_write({path!r}, '11\\n')")
    refused = {"PermissionError EACCES", "OSError EROFS"}
    if not Path(path).exists():
        refused.add("FileNotFoundError ENOENT")  # a host kernel built without it
    assert outcome in refused, outcome
    if readable:
        assert Path(path).read_text() == before


def test_sys_is_absent(sealed: SealedKernel) -> None:
    assert sealed.value("_read('/sys/kernel/uevent_helper')") == "FileNotFoundError ENOENT"


# keyctl(2) operations and special keyring ids.
KEYCTL_SEARCH, KEYCTL_READ = 10, 11
KEY_SPEC_SESSION_KEYRING = -3


def _host_key(description: str, payload: bytes) -> int:
    """Add a "user" key to this process's session keyring (which kernels inherit)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    key = libc.syscall(
        ctypes.c_long(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "add_key")),
        b"user",
        description.encode(),
        payload,
        ctypes.c_size_t(len(payload)),
        ctypes.c_long(KEY_SPEC_SESSION_KEYRING),
    )
    if key < 0:
        pytest.skip(
            f"this host has no session keyring to attack ({os.strerror(ctypes.get_errno())})"
        )
    return int(key)


def test_the_host_session_keyring_is_out_of_reach(start_sealed: Start, workdir: Path) -> None:
    description = f"nbseal-test-{uuid.uuid4().hex}"
    key = _host_key(description, b"host secret")
    kernel = start_sealed(SandboxPolicy(workdir=workdir))
    assert kernel.execute(SYSCALL_PROBE).status == "ok"
    keyctl = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, "keyctl")
    search = f"_sys({keyctl}, {KEYCTL_SEARCH}, {KEY_SPEC_SESSION_KEYRING}, "
    search += "_ct.addressof(_ct.create_string_buffer(b'user')), "
    search += f"_ct.addressof(_ct.create_string_buffer({description.encode()!r})), 0)"
    assert kernel.value(search) == f"[-1, {errno.EPERM}]"
    # Even knowing the key's id, reading it is refused.
    read = f"_sys({keyctl}, {KEYCTL_READ}, {key}, _ct.addressof(_ct.create_string_buffer(64)), 64)"
    assert kernel.value(read) == f"[-1, {errno.EPERM}]"


@pytest.fixture(scope="module")
def marked(start_sealed: Start, tmp_path_factory: pytest.TempPathFactory) -> SealedKernel:
    """A kernel under the default profile's rules, denying with MARK instead of EPERM."""
    workdir = tmp_path_factory.mktemp("marked")
    sandbox_identity().hand_over(workdir)
    profile = dataclasses.replace(PROFILE, name="test-mark", errno=MARK)
    kernel = start_sealed(SandboxPolicy(workdir=workdir), profile)
    assert kernel.execute(SYSCALL_PROBE).status == "ok"
    return kernel


@pytest.mark.parametrize("name", PROFILE.denied)
def test_each_denied_syscall_is_refused_by_the_filter(marked: SealedKernel, name: str) -> None:
    number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
    if number < 0:
        pytest.skip(f"{name} does not exist on this architecture")
    assert marked.value(f"_sys({number}, 0, 0, 0, 0, 0, 0)") == f"[-1, {MARK}]"


def _nr(name: str) -> int:
    return int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))


def test_new_user_namespaces_are_refused_and_other_clones_allowed(marked: SealedKernel) -> None:
    assert marked.value(f"_sys({_nr('unshare')}, {CLONE_NEWUSER})") == f"[-1, {MARK}]"
    # A plain unshare of nothing is allowed (it returns 0).
    assert marked.value(f"_sys({_nr('unshare')}, 0)") == "[0, 0]"
    # clone(2) with CLONE_NEWUSER, from a fresh single-threaded process.
    child = (
        "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
        "libc.syscall.restype = ctypes.c_long; "
        f"r = libc.syscall(ctypes.c_long({_nr('clone')}), ctypes.c_long({CLONE_NEWUSER} | 17), "
        "ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0)); "
        "r == 0 and os._exit(0); print(r, ctypes.get_errno())"
    )
    run = f"__import__('subprocess').run([__import__('sys').executable, '-c', {child!r}], "
    run += "capture_output=True, text=True).stdout.strip()"
    assert marked.value(run) == f"-1 {MARK}"
    # os.fork() is clone without it, and works: the kernel itself relies on it.
    assert marked.value("__import__('subprocess').run(['true']).returncode") == "0"


def test_clone3_personality_and_terminal_ioctls(marked: SealedKernel) -> None:
    assert marked.value(f"_sys({_nr('clone3')}, 0, 0)") == f"[-1, {errno.ENOSYS}]"
    assert marked.value(f"_sys({_nr('personality')}, 0x0040000)") == f"[-1, {errno.EINVAL}]"
    assert marked.value(f"_sys({_nr('personality')}, 0)")[0:3] != "[-1"
    for request in (TIOCSTI, TIOCLINUX):
        assert marked.value(f"_sys({_nr('ioctl')}, 0, {request}, 0)") == f"[-1, {MARK}]"
    # Other ioctls pass (here: not a terminal).
    assert marked.value(f"_sys({_nr('ioctl')}, 0, 0x5401, 0)") == f"[-1, {errno.ENOTTY}]"


def test_the_default_profile_denies_with_eperm(sealed: SealedKernel) -> None:
    assert sealed.execute(SYSCALL_PROBE).status == "ok"
    # ptrace(PTRACE_TRACEME) succeeds unsealed; the filter refuses it.
    assert sealed.value(f"_sys({_nr('ptrace')}, 0, 0, 0, 0)") == f"[-1, {errno.EPERM}]"
