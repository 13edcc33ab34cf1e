"""Start a kernel inside bubblewrap (bwrap).

The sandbox starts empty and gets only what a kernel needs: the system
runtime read-only (``/usr`` and its merged-usr links, a few named files of
``/etc``), the base Python the environment's venv points at, the environment
itself read-only, its ipc socket directory and the policy's working directory
writable, and fresh tmpfs ``/tmp`` and ``$HOME``. Everything else of the host
(other homes, the repository, the rest of the store, ``/tmp``, ``/run``,
``/sys``, the network, the host's environment variables and processes) is
absent.

What the sandbox holds is built in :mod:`.mounts`; whether bwrap can run
here is checked by :mod:`.available`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import weakref
from collections.abc import Mapping
from pathlib import Path

from nbseal.errors import KernelStartError, SandboxUnavailableError
from nbseal.procfs import status_field
from nbseal.runtime_dirs import runtime_base
from nbseal.sandbox import headstart
from nbseal.sandbox.available import ensure_sandbox, find_bwrap
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.launch import (
    KernelProcess,
    Launcher,
    LaunchRequest,
    PopenProcess,
    relay_script,
)
from nbseal.sandbox.limits import MemoryCgroup, memory_cgroup_parent
from nbseal.sandbox.mounts import (
    RELAY_INSIDE,
    SANDBOX_HOME,
    SANDBOX_USER,
    Mounts,
    base_python_prefixes,
    namespace_args,
    read_pyvenv_cfg,
    runtime_args,
    sandbox_ids,
    scratch_tmpfs,
    synthetic_files,
)
from nbseal.sandbox.policy import SandboxPolicy
from nbseal.sandbox.recipe import (
    CGROUP_PROCS,
    INFO_FD,
    CgroupSpec,
    ConnectionSpec,
    LaunchRecipe,
    pipe_token,
    prepare,
    tokenised,
)
from nbseal.sandbox.seccomp import PROFILE, SeccompProfile, compiled_filter
from nbseal.timeline import mark

__all__ = ["BwrapLauncher"]


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
        self._reapers: weakref.WeakKeyDictionary[KernelProcess, int] = weakref.WeakKeyDictionary()

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
        self,
        request: LaunchRequest,
        *,
        files: Mapping[str, int | str],
        info_fd: int | str | None = None,
    ) -> list[str]:
        """The bwrap command line; ``files`` maps a path inside to a readable fd (or, in a
        recipe, its token)."""
        policy = self.policy
        argv = [self.bwrap, *namespace_args(network=policy.network), "--clearenv"]
        for key, value in self.environment(request).items():
            argv += ["--setenv", key, value]
        argv += runtime_args(network=policy.network, scratch=policy.limits.scratch)
        for dest, fd in files.items():
            argv += ["--perms", "0444", "--ro-bind-data", str(fd), dest]

        mounts = Mounts()
        scratch = policy.limits.scratch
        mounts.add("/tmp", *scratch_tmpfs("/tmp", scratch))
        mounts.add(SANDBOX_HOME, *scratch_tmpfs(SANDBOX_HOME, scratch))
        system_site = read_pyvenv_cfg(request.env_path).get("include-system-site-packages")
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
        for inside, target in policy.links:
            mounts.add(str(inside), "--symlink", str(target), str(inside))
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
            raise KernelStartError.grant_missing(missing)
        identity = sandbox_identity()
        unwritable = [
            str(s.host_path)
            for s in policy.shares
            if s.mode == "rw" and not identity.may_write(s.host_path)
        ]
        if unwritable:
            raise KernelStartError.share_unwritable(
                unwritable, uid=identity.host_uid, gid=identity.host_gid
            )

    def recipe(self, request: LaunchRequest) -> LaunchRecipe:
        """This launch as data, its per-start parts as tokens (see :mod:`.recipe`)."""
        runtime = request.socket_dir.parent
        files = synthetic_files(*sandbox_ids(), network=self.policy.network)
        if request.relay is not None:
            files[RELAY_INSIDE] = relay_script().read_bytes()
        pipes = [compiled_filter(self.seccomp), *files.values()]
        data = {dest: pipe_token(i + 1) for i, dest in enumerate(files)}
        argv = self.build_argv(request, files=data, info_fd=INFO_FD)
        argv[1:1] = ["--seccomp", pipe_token(0)]
        parent = memory_cgroup_parent()
        cgroup = None
        if not isinstance(parent, str):
            limit = self.policy.limits.memory
            cgroup = CgroupSpec(str(parent.directory), parent.limit_file, parent.swap_file, limit)
            argv = MemoryCgroup.wrap_procs(CGROUP_PROCS, argv)
        identity = sandbox_identity()
        # nbseal run's own folder holds the runtime folder, and is made anew for each run.
        per_run = runtime.parent != runtime_base()
        return LaunchRecipe(
            argv=tuple(tokenised(a, runtime, parent=per_run) for a in argv),
            pipes=tuple(pipes),
            cwd=tokenised(str(self.policy.workdir), runtime),
            log=tokenised(str(request.log_path), runtime),
            folders=(tokenised(str(request.socket_dir), runtime),),
            owner=(identity.host_uid, identity.host_gid) if identity.drops else None,
            cgroup=cgroup,
            connection=_connection_spec(request) if request.relay is None else None,
        )

    def _may_start_ahead(self, request: LaunchRequest) -> bool:
        """Whether a head start may run this launch before the proxy computed it: a
        proxy's first kernel, whose sandbox reaches nothing (see :mod:`.headstart`)."""
        policy = self.policy
        runtime = request.socket_dir.parent
        return (
            request.socket_dir.name == "k1"
            and request.relay is None
            and not policy.network
            and not policy.shares
            and policy.workdir.is_relative_to(runtime)
        )

    async def launch(self, request: LaunchRequest) -> KernelProcess:
        self._check_paths()
        recipe = self.recipe(request)
        head_start = headstart.take(request.socket_dir)
        if head_start is not None:
            why_not = head_start.differs(recipe)
            if why_not is None:
                mark("proxy", "head start: taken over")
                headstart.used()
                return await self._started(
                    PopenProcess(head_start.popen), head_start.info_read, head_start.cgroup
                )
            mark("proxy", f"head start: killed, {why_not}")
            await asyncio.to_thread(head_start.kill)
        # Small files go to bwrap through pipes: nothing is written on the
        # host, and the sandbox gets a private, read-only copy.
        prepared = prepare(recipe, request.socket_dir.parent)
        try:
            with open(prepared.log, "ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *prepared.argv, **prepared.spawn_options(log)
                )
        except BaseException:
            prepared.abandon()
            raise
        prepared.started()
        if request.socket_dir.name == "k1":
            headstart.record(recipe if self._may_start_ahead(request) else None)
        return await self._started(process, prepared.info_read, prepared.cgroup)

    async def _started(
        self, process: KernelProcess, info_read: int, cgroup: MemoryCgroup | None
    ) -> KernelProcess:
        """Watch a started sandbox: its cgroup removed after it, its reaper's pid known."""
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
        if reaper is None:
            # bwrap made no sandbox. Forbidden namespaces get a clear error, not
            # a kernel that "exited at start": checked now rather than before
            # every first launch, where the check cost a sandbox's start.
            try:
                await ensure_sandbox(self.bwrap)
            except SandboxUnavailableError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
                raise
        else:
            self._reapers[process] = reaper
        return process

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

    def kernel_pid(self, process: KernelProcess) -> int | None:
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


async def _remove_when_done(process: KernelProcess, cgroup: MemoryCgroup) -> None:
    """Remove a sandbox's cgroup once its processes are gone."""
    await process.wait()
    # bwrap's pid 1 takes the sandbox down with it; its last tasks may take a moment.
    for _ in range(50):
        if cgroup.remove():
            return
        await asyncio.sleep(0.1)


def _connection_spec(request: LaunchRequest) -> ConnectionSpec | None:
    """The ipc connection file the kernel reads (as :class:`SubKernel` wrote it), but its key."""
    runtime = request.socket_dir.parent
    path = request.socket_dir / "connection.json"
    try:
        info = json.loads(path.read_text())
        return ConnectionSpec(
            path=tokenised(str(path), runtime),
            sockets=tokenised(str(info["ip"]), runtime),
            kernel_name=str(info["kernel_name"]),
            signature_scheme=str(info["signature_scheme"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_inside(pid: int) -> int | None:
    """A process's pid in its own (innermost) pid namespace."""
    words = status_field(pid, "NSpid")
    return int(words[-1]) if words else None


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
