"""Running mmdebstrap: its command line pieces, its output as progress, its failures."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbseal.backends.debian.lock import (
    DebianSource,
)
from nbseal.backends.debian.preflight import BuildIds, current_build_ids
from nbseal.backends.debian.sources import _DPKG_FILTERS, MIRROR_ENV_VAR
from nbseal.errors import DebianError, DebianResolutionError
from nbseal.fsutil import remove_tree
from nbseal.proc import run_telling
from nbseal.progress import Progress
from nbseal.sandbox.confine import confined_command
from nbseal.sandbox.userns import userns_command


@dataclass(frozen=True)
class BuildRoom:
    """The two folders of one mmdebstrap run, both in /tmp (bound into its sandbox).

    ``inputs``: what nbseal gives it (configuration, the offline build's
    ``file://`` repository), nbseal's own, readable by anyone, read-only
    inside. ``outputs``: what it writes (the tarball, the .debs and apt
    lists it keeps), owned by the build's namespace root, readable by anyone.
    """

    inputs: Path
    outputs: Path


@dataclass(frozen=True)
class BuildUser:
    """mmdebstrap as the root of a user namespace of subordinate ids, confined.

    Root's mmdebstrap would make no user namespace (maintainer scripts would
    run as host root in a chroot, which root can leave), and a user's would
    show the host's files to whatever leaves its chroot. So both run it
    through :mod:`nbseal.sandbox.confine`: as the root of a user namespace
    mapped to 65536 subordinate ids of the user (or root), under bwrap,
    seeing the host's /usr, what it reads of /etc and its two folders, nothing else.
    The outputs folder belongs to those ids: a regular user makes and
    removes it through the same namespace.
    """

    ids: BuildIds

    @classmethod
    def current(cls) -> BuildUser:
        return cls(current_build_ids())

    def command(self, mmdebstrap: str, room: BuildRoom, *, network: bool) -> list[str]:
        return confined_command(
            [mmdebstrap],
            uid=self.ids.uid,
            gid=self.ids.gid,
            count=self.ids.count,
            scratch=room.outputs,
            inputs=[room.inputs],
            network=network,
        )

    def _as_builder(self, *argv: str) -> None:
        done = subprocess.run(
            [*userns_command(self.ids.uid, self.ids.gid, self.ids.count), *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise DebianError.not_in_namespace(argv[0], done.stderr.strip())

    def open_room(self, name: str) -> BuildRoom:
        inputs = Path(tempfile.mkdtemp(prefix=f"nbseal-debian-{name}-in-", dir="/tmp"))
        os.chmod(inputs, 0o755)
        outputs = Path(f"/tmp/nbseal-debian-{name}-out-{uuid.uuid4().hex[:12]}")
        try:
            if os.geteuid() == 0:
                outputs.mkdir(mode=0o755)
                os.chown(outputs, self.ids.uid, self.ids.gid)
            else:  # only the namespace can make a folder its root owns
                self._as_builder("mkdir", "-m", "0755", str(outputs))
        except BaseException:
            remove_tree(inputs)
            raise
        return BuildRoom(inputs, outputs)

    def close_room(self, room: BuildRoom) -> None:
        remove_tree(room.inputs)
        if os.geteuid() == 0:
            remove_tree(room.outputs)
        elif room.outputs.exists():
            self._as_builder("rm", "-rf", "--one-file-system", str(room.outputs))


@dataclass
class _Run:
    returncode: int
    output: str


async def _run_mmdebstrap(argv: Sequence[str], progress: Progress, log_path: Path) -> _Run:
    """Run mmdebstrap, its ``I:`` lines as progress steps; keep everything in ``log_path``."""
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    env.pop("TMPDIR", None)  # the sandbox sets its own (see sandbox/confine.py)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + shlex.join(argv) + "\n")

        def tell(line: str) -> None:
            log.write(line + "\n")
            # Hook invocations are long shell lines; the stages make better steps.
            if line.startswith("I: ") and not line.startswith("I: running "):
                progress.step(line[3:])

        # Cancelled (interrupt) or failed: mmdebstrap and its children go too.
        ran = await run_telling(argv, tell, env=env, merged=True, own_group=True)
    return _Run(ran.returncode, "\n".join(ran.lines))


_UNKNOWN = (
    re.compile(r"E: Unable to locate package (\S+)"),
    re.compile(r"E: Package '([^']+)' has no installation candidate"),
    re.compile(r"E: Version '[^']+' for '([^']+)' was not found"),
)


def _failure(run: _Run, what: str, suite: str, log_path: Path) -> DebianError:
    tail = "\n".join(line for line in run.output.splitlines() if line.strip())[-3000:]
    for pattern in _UNKNOWN:
        match = pattern.search(run.output)
        if match:
            return DebianResolutionError.unknown_package(
                match.group(1), suite=suite, output=tail, mirror_variable=MIRROR_ENV_VAR
            )
    if "Could not resolve" in run.output or "Failed to fetch" in run.output:
        return DebianError.mirror_unreachable(what, tail, variable=MIRROR_ENV_VAR)
    return DebianError.mmdebstrap_failed(what, run.returncode, tail, log=log_path)


def _dpkg_options(options: Sequence[str], scratch: Path) -> list[str]:
    """dpkg's path filters, as a config file put in place before anything is installed.

    Not ``--dpkgopt``: with path filters there, mmdebstrap pipes every .deb it
    extracts itself through mmtarfilter (Perl), which took 78 s of a 108 s
    offline build here; dpkg applies the same filters natively when it
    installs. What the extraction put down unfiltered is removed afterwards
    (:func:`prune_excluded`).

    The file goes in by mmdebstrap's ``upload`` hook, which reads it as the
    user who runs nbseal: unprivileged, the hooks' root is a subordinate uid
    that cannot read the user's private scratch directory.
    """
    if not options:
        return []
    config = scratch / "dpkg-path-filters.cfg"
    config.write_text("".join(f"{option}\n" for option in options))
    os.chmod(config, 0o644)
    return [
        '--setup-hook=mkdir -p "$1/etc/dpkg/dpkg.cfg.d"',
        f"--setup-hook=upload {shlex.quote(str(config))} {_DPKG_FILTERS}",
        f'--setup-hook=chmod 0644 "$1{_DPKG_FILTERS}"',
    ]


def _path_filters(options: Sequence[str]) -> list[tuple[bool, str]]:
    filters = []
    for option in options:
        key, _, pattern = option.partition("=")
        if key in ("path-exclude", "path-include"):
            filters.append((key == "path-exclude", pattern))
    return filters


def _excluded(path: str, filters: Sequence[tuple[bool, str]]) -> bool:
    # dpkg: the last filter that matches decides; fnmatch(3) without
    # FNM_PATHNAME, so * also matches "/", as fnmatchcase does.
    verdict = False
    for exclude, pattern in filters:
        if fnmatch.fnmatchcase(path, pattern):
            verdict = exclude
    return verdict


def prune_excluded(root: Path, options: Sequence[str]) -> int:
    """Remove what dpkg's path filters exclude but mmdebstrap's extraction put down.

    Returns the number of entries removed. Directories go only when they
    end up empty and are excluded themselves.
    """
    filters = _path_filters(options)
    if not filters:
        return 0
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        inside = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        for name in filenames:
            if _excluded(f"{inside}/{name}", filters):
                os.unlink(os.path.join(dirpath, name))
                removed += 1
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                if _excluded(f"{inside}/{name}", filters):
                    os.unlink(full)
                    removed += 1
            elif _excluded(f"{inside}/{name}", filters) and not os.listdir(full):
                os.rmdir(full)
                removed += 1
    return removed


def _normalise_hook(sources: Sequence[DebianSource], scratch: Path) -> list[str]:
    """Hooks that make the tree independent of the host and of the build's mirror.

    The tree's sources.list names the lock's sources (an offline build would
    leave its file:// repository there), and /etc/hosts, /etc/hostname and
    /etc/resolv.conf are fixed text instead of the host's copies.
    """
    sources_list = scratch / "sources.list"
    sources_list.write_text("".join(s.line() + "\n" for s in sources))
    os.chmod(sources_list, 0o644)
    script = (
        "printf '127.0.0.1 localhost\\n::1 localhost ip6-localhost\\n' > \"$1/etc/hosts\" && "
        "printf 'nbseal\\n' > \"$1/etc/hostname\" && "
        ': > "$1/etc/resolv.conf" && '
        'chmod 0644 "$1/etc/hosts" "$1/etc/hostname" "$1/etc/resolv.conf"'
    )
    return [
        f"--customize-hook=upload {shlex.quote(str(sources_list))} /etc/apt/sources.list",
        f"--customize-hook={script}",
        # upload writes with the hook's umask; apt and the kernel read it as anyone.
        '--customize-hook=chmod 0644 "$1/etc/apt/sources.list"',
    ]
