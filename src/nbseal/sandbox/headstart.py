"""The head start: a proxy's first kernel, started before the proxy has imported itself.

The nbseal kernel spends about 0.25 s importing before it can compute its
first kernel's sandbox, and that kernel then takes about 0.5 s to start.
The :class:`~nbseal.sandbox.recipe.LaunchRecipe` of the first kernel that
the last proxy for the same notebook started is kept in the user's cache;
the next proxy starts a kernel from it first thing (:func:`begin`, in some
30 ms), then imports the rest while that kernel starts. When the proxy has
computed its own first launch, the launcher compares (:func:`take`,
:meth:`HeadStart.differs`): the same recipe takes the running kernel over;
any other kills it and starts the right one. A changed notebook, lock or
policy costs a wasted head start, never a wrong kernel, and no message
reaches the head start's kernel before the comparison.

Only sandboxes that reach nothing are kept (sealed, without network,
shares or a relay, their working directory the proxy's scratch folder):
the launcher decides, in :meth:`BwrapLauncher.launch`. A recipe is read
only from a file the user owns, in a folder the user owns, neither
writable by anyone else, and must pass :meth:`LaunchRecipe.check` (bwrap,
seccomp, a clean environment) before anything runs. Whoever can write it
could as well write the user's shell profile.

``NBSEAL_HEAD_START=0`` turns it off. Like :mod:`.recipe`, this module stays
light: it runs before the proxy's imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from nbseal.paths import cache_root
from nbseal.runtime_dirs import make_runtime_dir
from nbseal.sandbox.limits import MemoryCgroup
from nbseal.sandbox.recipe import LaunchRecipe, RecipeError, placed, prepare
from nbseal.timeline import mark

__all__ = ["HeadStart", "begin", "discard", "recipe_file", "record", "runtime_dir", "take"]

FOLDER = "head-start"
MAX_BYTES = 1 << 20  # a recipe is some 10 KB


@dataclass
class HeadStart:
    """A kernel started from a stored recipe, waiting to be taken over or killed."""

    recipe: LaunchRecipe
    runtime_dir: Path
    socket_dir: Path
    popen: subprocess.Popen[bytes]
    info_read: int
    cgroup: MemoryCgroup | None
    connection_digest: str

    def differs(self, recipe: LaunchRecipe) -> str | None:
        """Why ``recipe`` (the launch the proxy computed) is not this kernel's, or None."""
        mine = self.recipe
        if mine.argv != recipe.argv:
            at = next(
                (i for i, (a, b) in enumerate(zip(mine.argv, recipe.argv, strict=False)) if a != b),
                min(len(mine.argv), len(recipe.argv)),
            )
            theirs = recipe.argv[at] if at < len(recipe.argv) else "(the end)"
            ours = mine.argv[at] if at < len(mine.argv) else "(the end)"
            return f"its command line differs at argument {at}: {_shown(ours)} for {_shown(theirs)}"
        for field in ("pipes", "cwd", "log", "folders", "owner", "cgroup", "connection"):
            if getattr(mine, field) != getattr(recipe, field):
                return f"its {field} differ from this launch's"
        if self.popen.poll() is not None:
            return f"its kernel exited ({self.popen.returncode})"
        if recipe.connection is None:
            return "this launch has no connection file"
        connection = Path(placed(recipe.connection.path, self.runtime_dir))
        try:
            digest = hashlib.sha256(connection.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        if digest != self.connection_digest:
            return "the connection file changed"
        return None

    def kill(self) -> None:
        """Kill the head start's sandbox and free what it held (the folders stay)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        with contextlib.suppress(OSError):
            os.close(self.info_read)
        # Its sockets: the next kernel binds the same paths.
        for leftover in self.socket_dir.glob("s-*"):
            leftover.unlink(missing_ok=True)
        if self.cgroup is not None:
            # bwrap's pid 1 takes the sandbox down with it; its last tasks may take a moment.
            for _ in range(50):
                if self.cgroup.remove():
                    break
                time.sleep(0.02)


@dataclass
class _State:
    record_to: Path | None = None  # where this proxy's first recipe is kept
    recorded: bool = False
    pending: HeadStart | None = None
    runtime_dir: Path | None = None


_state = _State()


def _shown(argument: str) -> str:
    return repr(argument.replace("\x00", "$"))[:80]


def recipe_file(session: str, cwd: str, *, run: bool) -> Path:
    """Where the recipe of a proxy started in ``cwd`` for notebook ``session`` is kept
    (``run``: by ``nbseal run``, in a folder of its own; else by a Jupyter server)."""
    key = json.dumps(
        [1, sys.executable, os.geteuid(), os.path.realpath(cwd), session, run],
        separators=(",", ":"),
    )
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    return cache_root() / FOLDER / f"{name}.json"


def begin(*, connection_file: str, runtime_parent: Path | None, session: str, cwd: str) -> None:
    """Start the kernel of this notebook's stored recipe, if there is one to trust.

    Never raises: a head start that cannot be made is only time not saved,
    and the timeline says why.
    """
    if os.environ.get("NBSEAL_HEAD_START", "") == "0":
        return
    path = recipe_file(session, cwd, run=runtime_parent is not None)
    _state.record_to = path
    try:
        recipe = _read(path)
        if recipe is None:
            return
        with open(connection_file, "rb") as handle:
            key = str(json.load(handle).get("key", ""))
    except (OSError, ValueError, RecipeError) as exc:
        mark("proxy", f"head start: not made ({exc})")
        return
    runtime = make_runtime_dir("nbseal-", runtime_parent)
    try:
        _state.pending = _start(recipe, runtime, key)
    except Exception as exc:  # whatever failed, the proxy starts its kernel as before
        import shutil

        shutil.rmtree(runtime, ignore_errors=True)
        mark("proxy", f"head start: not made ({type(exc).__name__}: {exc})")
        return
    _state.runtime_dir = runtime
    mark("proxy", f"head start: sandbox launched (pid {_state.pending.popen.pid})")


def _read(path: Path) -> LaunchRecipe | None:
    """The recipe at ``path``; None if there is none; RecipeError if it may not be trusted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecipeError(f"{path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        _trusted(os.fstat(handle.fileno()), path)
        _trusted(os.lstat(path.parent), path.parent)
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise RecipeError(f"{path} is larger than any recipe")
    try:
        return LaunchRecipe.from_json(json.loads(data))
    except ValueError as exc:
        raise RecipeError(f"{path}: {exc}") from exc


def _trusted(info: os.stat_result, path: Path) -> None:
    if info.st_uid != os.geteuid():
        raise RecipeError(f"{path} belongs to uid {info.st_uid}, not to this user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RecipeError(f"{path} may be written by others (mode {stat.filemode(info.st_mode)})")


def _start(recipe: LaunchRecipe, runtime: Path, key: str) -> HeadStart:
    if recipe.connection is None:
        raise RecipeError("the recipe has no connection file")
    connection = Path(placed(recipe.connection.path, runtime))
    connection.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    recipe.connection.write(runtime, key)
    digest = hashlib.sha256(connection.read_bytes()).hexdigest()
    prepared = prepare(recipe, runtime)
    try:
        with open(prepared.log, "ab") as log:
            popen = subprocess.Popen(prepared.argv, **prepared.spawn_options(log))
    except BaseException:
        prepared.abandon()
        raise
    prepared.started()
    return HeadStart(
        recipe=recipe,
        runtime_dir=runtime,
        socket_dir=connection.parent,
        popen=popen,
        info_read=prepared.info_read,
        cgroup=prepared.cgroup,
        connection_digest=digest,
    )


def runtime_dir() -> Path | None:
    """The runtime folder the head start made (the proxy's own from then on), once."""
    made, _state.runtime_dir = _state.runtime_dir, None
    return made


def take(socket_dir: Path) -> HeadStart | None:
    """The head start's kernel, if it was started for ``socket_dir``; it is the caller's."""
    pending = _state.pending
    if pending is None or pending.socket_dir != socket_dir:
        return None
    _state.pending = None
    return pending


def used() -> None:
    """Mark this proxy's recipe as used now (``nbseal env gc`` goes by that time)."""
    if _state.record_to is not None:
        with contextlib.suppress(OSError):
            os.utime(_state.record_to)


def collect_garbage(older_than_seconds: float) -> int:
    """Remove the recipes unused for ``older_than_seconds``, and those that bind a path
    gone since (an environment ``nbseal env gc`` removed): how many were removed."""
    folder = cache_root() / FOLDER
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            stale = path.stat().st_mtime < cutoff or _binds_a_missing_path(path)
        except OSError:
            continue
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _binds_a_missing_path(path: Path) -> bool:
    try:
        argv = json.loads(path.read_bytes())["argv"]
    except (OSError, ValueError, KeyError, TypeError):
        return True  # not a recipe this nbseal can read
    return any(
        option in ("--ro-bind", "--bind")
        and isinstance(source, str)
        and not source.startswith("\x00")
        and not os.path.exists(source)
        for option, source in pairwise(argv)
    )


def discard() -> None:
    """Kill a head start nobody took (the proxy stops, or starts no kernel at once)."""
    pending, _state.pending = _state.pending, None
    if pending is not None:
        pending.kill()
        mark("proxy", "head start: not used, killed")


def record(recipe: LaunchRecipe | None) -> None:
    """Keep this proxy's first launch for the next proxy of the same notebook; None
    (a launch that may not be started ahead) removes what an earlier proxy kept."""
    path = _state.record_to
    if path is None or _state.recorded:
        return
    _state.recorded = True
    try:
        if recipe is None:
            path.unlink(missing_ok=True)
            return
        recipe.check()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps(recipe.to_json(), separators=(",", ":")).encode()
        import tempfile

        fd, temporary = tempfile.mkstemp(prefix=".recipe-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, RecipeError) as exc:
        mark("proxy", f"head start: recipe not kept ({exc})")
