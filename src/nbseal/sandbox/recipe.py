"""A sandbox's start as data: what bwrap runs, with which pipes, where.

:class:`~nbseal.sandbox.bwrap.BwrapLauncher` computes a :class:`LaunchRecipe`
for every kernel and starts the kernel from it with :func:`prepare`. What
differs from one start to the next is a token in the recipe: the proxy's
runtime folder (which holds the kernel's sockets and scratch working
directory), the file descriptors of the pipes bwrap reads (the seccomp
program, the synthetic ``/etc`` files, its ``--info-fd``) and the memory
cgroup's ``cgroup.procs``. Everything else is the recipe's, so two recipes
are equal exactly when the two starts would run the same sandbox.

The head start (:mod:`nbseal.sandbox.headstart`) keeps a proxy's first
recipe and starts the next proxy's first kernel from it before that proxy
has imported what computes it. This module and what it imports stay light
for that reason: no asyncio, no zmq, no nbseal.errors.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nbseal.runtime_dirs import write_ipc_connection_file
from nbseal.sandbox.limits import Hierarchy, MemoryCgroup

__all__ = [
    "CGROUP_PROCS",
    "INFO_FD",
    "RUNTIME",
    "RUNTIME_PARENT",
    "CgroupSpec",
    "ConnectionSpec",
    "LaunchRecipe",
    "Prepared",
    "RecipeError",
    "pipe_token",
    "pipe_with",
    "placed",
    "prepare",
    "tokenised",
]

# Tokens for what each start makes anew. NUL cannot occur in an argument, so
# no argument of a real command line is ever taken for one.
RUNTIME = "\x00runtime"
RUNTIME_PARENT = "\x00runtime-parent"
INFO_FD = "\x00info-fd"
CGROUP_PROCS = "\x00cgroup-procs"
FORMAT = 1


def pipe_token(index: int) -> str:
    return f"\x00pipe-{index}"


class RecipeError(ValueError):
    """A stored recipe that is not one this nbseal wrote."""


@dataclass(frozen=True)
class CgroupSpec:
    """The memory cgroup each start makes: where, which files, what limit."""

    directory: str
    limit_file: str
    swap_file: str | None
    limit: int


@dataclass(frozen=True)
class ConnectionSpec:
    """The kernel's ipc connection file, but its key (the proxy's, read at each start)."""

    path: str  # tokenised
    sockets: str  # tokenised
    kernel_name: str
    signature_scheme: str

    def write(self, runtime_dir: Path, key: str) -> None:
        write_ipc_connection_file(
            Path(placed(self.path, runtime_dir)),
            sockets=Path(placed(self.sockets, runtime_dir)),
            key=key,
            kernel_name=self.kernel_name,
            signature_scheme=self.signature_scheme,
        )


@dataclass(frozen=True)
class LaunchRecipe:
    argv: tuple[str, ...]  # bwrap's command line, tokens in place
    pipes: tuple[bytes, ...]  # what pipe_token(i) carries
    cwd: str  # tokenised
    log: str  # tokenised: the kernel's log file
    folders: tuple[str, ...]  # tokenised: made (mode 0700) and handed to ``owner``
    owner: tuple[int, int] | None  # the sandbox's uid and gid, when nbseal runs as root
    cgroup: CgroupSpec | None
    connection: ConnectionSpec | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "argv": list(self.argv),
            "pipes": [base64.b64encode(p).decode() for p in self.pipes],
            "cwd": self.cwd,
            "log": self.log,
            "folders": list(self.folders),
            "owner": list(self.owner) if self.owner is not None else None,
            "cgroup": vars(self.cgroup) if self.cgroup is not None else None,
            "connection": vars(self.connection) if self.connection is not None else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> LaunchRecipe:
        """A recipe from :meth:`to_json`'s form; RecipeError if it is anything else."""
        try:
            if data["format"] != FORMAT:
                raise RecipeError(f"format {data['format']!r}, not {FORMAT}")
            owner = data["owner"]
            cgroup = data["cgroup"]
            connection = data["connection"]
            recipe = cls(
                argv=tuple(_strings(data["argv"])),
                pipes=tuple(base64.b64decode(p, validate=True) for p in _strings(data["pipes"])),
                cwd=_string(data["cwd"]),
                log=_string(data["log"]),
                folders=tuple(_strings(data["folders"])),
                owner=(int(owner[0]), int(owner[1])) if owner is not None else None,
                cgroup=CgroupSpec(**cgroup) if cgroup is not None else None,
                connection=ConnectionSpec(**connection) if connection is not None else None,
            )
        except RecipeError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RecipeError(f"not a launch recipe: {exc}") from exc
        recipe.check()
        return recipe

    def check(self) -> None:
        """What a recipe must hold to be started at all: bwrap, sealed (seccomp, a clean
        environment), pipes for every token, every folder inside the runtime folder."""
        argv = list(self.argv)
        if self.cgroup is not None:
            if argv[:2] != ["/bin/sh", "-c"] or argv[4:5] != [CGROUP_PROCS]:
                raise RecipeError("a cgroup recipe must start with the cgroup's wrapper")
            argv = argv[5:]
        if not argv or os.path.basename(argv[0]) != "bwrap" or not os.path.isabs(argv[0]):
            raise RecipeError("the command is not bwrap")
        for needed in ("--seccomp", "--clearenv", "--die-with-parent", "--unshare-pid"):
            if needed not in argv:
                raise RecipeError(f"the command lacks {needed}")
        tokens = {a for a in self.argv if a.startswith("\x00pipe-")}
        if tokens != {pipe_token(i) for i in range(len(self.pipes))}:
            raise RecipeError("the pipes do not match the command line")
        for path in (self.cwd, self.log, *self.folders):
            if not path.startswith(RUNTIME + "/") or ".." in path.split("/"):
                raise RecipeError(f"{path!r} is not inside the runtime folder")


@dataclass
class Prepared:
    """A recipe made concrete for one start: run ``argv`` in ``cwd`` passing ``pass_fds``,
    its output to ``log``; then :meth:`started` (or :meth:`abandon` if it did not start)."""

    argv: list[str]
    cwd: str
    log: str
    pass_fds: tuple[int, ...]
    info_read: int
    cgroup: MemoryCgroup | None

    def spawn_options(self, log: IO[bytes]) -> dict[str, Any]:
        """The keyword arguments of a start, for subprocess.Popen or asyncio's: no
        environment (bwrap's --clearenv builds the kernel's), a session of its own,
        its output to ``log``, only the recipe's pipes passed."""
        return {
            "env": {},
            "cwd": self.cwd,
            "stdin": subprocess.DEVNULL,
            "stdout": log,
            "stderr": log,
            "pass_fds": self.pass_fds,
            "start_new_session": True,
        }

    def started(self) -> None:
        """Close the ends the child holds now; ``info_read`` stays open for the caller."""
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def abandon(self) -> None:
        self.started()
        with contextlib.suppress(OSError):
            os.close(self.info_read)
        if self.cgroup is not None:
            self.cgroup.remove()


def prepare(recipe: LaunchRecipe, runtime_dir: Path) -> Prepared:
    """Make what ``recipe`` needs for a start in ``runtime_dir``: its working directory
    and folders (handed to the sandbox's user), its memory cgroup and its pipes."""
    cwd = Path(placed(recipe.cwd, runtime_dir))
    cwd.mkdir(parents=True, exist_ok=True)
    if recipe.owner is not None:
        os.chown(cwd, *recipe.owner, follow_symlinks=False)
    for folder in recipe.folders:
        path = Path(placed(folder, runtime_dir))
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if recipe.owner is not None:
            os.chown(path, *recipe.owner, follow_symlinks=False)
            for entry in path.iterdir():
                if not entry.is_symlink():
                    os.chown(entry, *recipe.owner, follow_symlinks=False)
    argv = list(recipe.argv)
    cgroup = None
    if recipe.cgroup is not None:
        spec = recipe.cgroup
        hierarchy = Hierarchy(Path(spec.directory), spec.limit_file, spec.swap_file)
        cgroup = MemoryCgroup(hierarchy, spec.limit)
        try:
            cgroup.create()
        except OSError:
            # e.g. a read-only cgroup file system in a container: uncapped, as
            # where no cgroup can be found at all.
            cgroup = None
            argv = argv[len(MemoryCgroup.wrap_procs(CGROUP_PROCS, [])) :]
    fds: list[int] = []
    try:
        for content in recipe.pipes:
            fds.append(pipe_with(content))
        info_read, info_write = os.pipe()
    except BaseException:
        for fd in fds:
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        raise
    values = {pipe_token(i): str(fd) for i, fd in enumerate(fds)}
    values[INFO_FD] = str(info_write)
    if cgroup is not None:
        values[CGROUP_PROCS] = str(cgroup.procs)
    return Prepared(
        argv=[placed(values.get(a, a), runtime_dir) for a in argv],
        cwd=str(cwd),
        log=placed(recipe.log, runtime_dir),
        pass_fds=(*fds, info_write),
        info_read=info_read,
        cgroup=cgroup,
    )


def tokenised(text: str, runtime_dir: Path, *, parent: bool = False) -> str:
    """``text`` with the runtime folder's path replaced by its token; with ``parent``
    (a folder made for this start too, as ``nbseal run``'s is), a ``text`` that is
    the folder's parent by the parent's token."""
    if parent and text == str(runtime_dir.parent):
        return RUNTIME_PARENT
    return text.replace(str(runtime_dir), RUNTIME)


def placed(text: str, runtime_dir: Path) -> str:
    """``text`` with the tokens of the runtime folder and its parent replaced."""
    if text == RUNTIME_PARENT:
        return str(runtime_dir.parent)
    return text.replace(RUNTIME, str(runtime_dir))


def pipe_with(content: bytes) -> int:
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


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise RecipeError(f"{value!r} is not a string")
    return value


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list):
        raise RecipeError(f"{values!r} is not a list")
    return [_string(v) for v in values]
