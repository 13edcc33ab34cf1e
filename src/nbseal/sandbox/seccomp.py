"""The system calls a sealed process may not make, as a seccomp filter.

Namespaces and mounts decide what a kernel *sees*; this filter decides what
it may *ask the host kernel to do*. It follows Flatpak's list (the syscalls
that reach host-wide state or widen the attack surface of the host kernel)
and is compiled by libseccomp through its Python bindings (``pyseccomp``),
never written by hand as BPF. bwrap loads it (``--seccomp FD``) after it has
built the sandbox and before it runs the kernel, so every process of the
sandbox inherits it and none can lift it.

Everything else is allowed: the filter is a deny-list on top of the
unprivileged user, the namespaces and the dropped capabilities, not the only
wall. A denied call fails with ``EPERM`` (``clone3`` with ``ENOSYS``, so that
glibc falls back to ``clone``, whose flags the filter can read; ``personality``
with ``EINVAL``, as Flatpak does).
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass

from nbseal.errors import SandboxUnavailableError

__all__ = ["PROFILE", "SeccompProfile", "compiled_filter"]

# clone(2) and unshare(2) flags; the filter reads the first argument of both.
CLONE_NEWUSER = 0x10000000
# ioctl(2) requests that push input into, or reprogram, a terminal.
TIOCSTI = 0x5412
TIOCLINUX = 0x541C


@dataclass(frozen=True)
class SeccompProfile:
    """A named deny-list: whole syscalls, and syscalls denied for some arguments."""

    name: str
    denied: tuple[str, ...]
    # Shown by ``#seal describe`` and in docs/security.md, beside the list.
    conditional: tuple[str, ...]
    # What a denied call fails with (tests pick one no real call returns).
    errno: int = errno.EPERM

    def describe(self) -> str:
        return (
            f"seccomp profile {self.name}: {len(self.denied)} syscalls denied, "
            f"and {', '.join(self.conditional)}"
        )


PROFILE = SeccompProfile(
    name="nbseal-default",
    denied=(
        # the host's keyrings (a kernel inherits the session keyring)
        "keyctl",
        "add_key",
        "request_key",
        # other processes' memory, and kernel debugging interfaces
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "perf_event_open",
        "bpf",
        "userfaultfd",
        # mounts and namespaces (the sandbox's own are final)
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "setns",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        # the host kernel itself
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "syslog",
        "uselib",
        "vhangup",
        # file handles bypass the mount tree (the "shocker" escape)
        "open_by_handle_at",
        "name_to_handle_at",
        # io_uring: a large attack surface that bypasses this filter's view
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        # x86 only; skipped where the architecture has no such call
        "modify_ldt",
    ),
    conditional=(
        "clone/unshare with CLONE_NEWUSER",
        "clone3 (ENOSYS)",
        "personality other than PER_LINUX",
        "ioctl TIOCSTI and TIOCLINUX",
    ),
)


def _build(profile: SeccompProfile) -> bytes:
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:  # the bindings, or libseccomp.so.2, missing
        raise SandboxUnavailableError.no_seccomp(str(exc)) from exc

    deny = sc.ERRNO(profile.errno)
    rules = sc.SyscallFilter(sc.ALLOW)
    for name in profile.denied:
        try:
            rules.add_rule(deny, name)
        except OSError:
            # libseccomp has no number for it on this architecture.
            if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
                raise
    for call in ("clone", "unshare"):
        rules.add_rule(deny, call, sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    # clone3 passes its flags in a struct the filter cannot read.
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(sc.ERRNO(errno.EINVAL), "personality", sc.Arg(0, sc.NE, 0))
    # ioctl's request is an int: compare its low 32 bits only.
    for request in (TIOCSTI, TIOCLINUX):
        rules.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))

    with os.fdopen(os.memfd_create("nbseal-seccomp"), "w+b") as program:
        rules.export_bpf(program)
        program.seek(0)
        return program.read()


@functools.cache
def compiled_filter(profile: SeccompProfile = PROFILE) -> bytes:
    """The BPF program bwrap loads, compiled once per process."""
    return _build(profile)
