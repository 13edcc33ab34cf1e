"""The Guix backend: Guix-Jupyter's ``;;guix environment`` under nbseal.

It needs the ``guix`` command (and its daemon). Where there is none, a Guix
environment fails with :class:`GuixUnavailableError` ("guix is not installed
on this machine"), shown in the cell that declared it; the rest of a Guix
notebook needs no Guix: ``;;guix download`` uses nbseal's data store and
``;;guix pin`` only records a commit.

For an environment of packages ``P...`` pinned to Guix commit ``C``:

resolve
    ``guix time-machine -q --commit=C -- describe -f channels`` gives the
    exact channels (``C`` in full, with its introduction); an unpinned
    environment takes ``guix describe -f channels`` (the Guix in use). Then,
    with those channels (``guix time-machine -C channels.scm --``),
    ``shell --export-manifest P...`` writes the manifest and ``show P...``
    gives the versions. The lock (``Lock.pylock``) is TOML holding the
    channels, the manifest and each package's name and version: the same
    channels and manifest give the same profile, bit for bit, wherever Guix
    runs.
build
    ``guix time-machine -C channels.scm -- shell -m manifest.scm --root=ROOT
    -- true`` builds the profile and makes ``ROOT`` (under the cache root,
    named by the lock's key, so it survives the store's rename) a garbage
    collector root; the store entry holds the channels, the manifest and
    ``profile``, a link to the profile in ``/gnu/store``.
kernel
    the profile's kernelspec (:func:`guix_kernel_command`), started by
    ``guix shell --container`` (:class:`nbseal.sandbox.guix.GuixLauncher`).

None of this can run where nbseal is developed: Guix is not installed there.
The command lines are pure functions with unit tests, resolve and build are
tested against a stand-in ``guix`` script.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbseal.backends.base import Backend, strip_prefix
from nbseal.backends.kernelspecs import (
    KernelCommand,
    command_from_spec,
    pick_kernelspec,
    prefix_kernelspecs,
)
from nbseal.directives import GUIX_REQUIREMENT_PREFIX
from nbseal.errors import GUIX_KERNEL_HINT, GuixError, GuixResolutionError, KernelStartError
from nbseal.lock import Lock, backend_lock_data, toml_assignments, toml_table
from nbseal.paths import cache_root
from nbseal.plan import EnvironmentSpec, guix_commit_of, host_platform
from nbseal.proc import run_telling
from nbseal.progress import Progress
from nbseal.sandbox.guix import GuixLauncher, find_guix, guix_profile
from nbseal.sandbox.launch import Launcher
from nbseal.sandbox.policy import SandboxPolicy

__all__ = [
    "GUIX_LOCK_VERSION",
    "GuixBackend",
    "GuixLockData",
    "GuixPackage",
    "build_argv",
    "channel_commits",
    "describe_argv",
    "guix_kernel_command",
    "guix_packages",
    "manifest_argv",
    "parse_show",
    "show_argv",
]

GUIX_LOCK_VERSION = 1


# ---------------------------------------------------------------------------
# specs and the guix command
# ---------------------------------------------------------------------------
def guix_packages(requirements: Sequence[str]) -> tuple[str, ...]:
    """``guix:SPEC`` → the package specifications Guix takes."""
    return strip_prefix(requirements, GUIX_REQUIREMENT_PREFIX, GuixResolutionError.foreign)


def _directive(name: str, requirements: Sequence[str], pin: str = "") -> str:
    """The ``;;guix`` lines that declared an environment, as the error's context."""
    lines = []
    commit = guix_commit_of(pin) if pin else None
    if commit:
        lines.append(f";;guix pin {commit}")
    lines.append(f";;guix environment {name} <- {' '.join(guix_packages(requirements))}")
    return "needed by:\n" + "\n".join(f"    {line}" for line in lines)


# -- command lines (pure) ----------------------------------------------------
def describe_argv(guix: str, commit: str | None) -> list[str]:
    """Print the exact channels: of Guix at ``commit``, or of the Guix in use."""
    if commit is None:
        return [guix, "describe", "--format=channels"]
    # -q: the user's channel files are not part of the notebook.
    return [guix, "time-machine", "-q", f"--commit={commit}", "--", "describe", "--format=channels"]


def _time_machine(guix: str, channels: Path) -> list[str]:
    return [guix, "time-machine", f"--channels={channels}", "--"]


def manifest_argv(guix: str, channels: Path, packages: Sequence[str]) -> list[str]:
    return [*_time_machine(guix, channels), "shell", "--export-manifest", *packages]


def show_argv(guix: str, channels: Path, packages: Sequence[str]) -> list[str]:
    return [*_time_machine(guix, channels), "show", *packages]


def build_argv(guix: str, channels: Path, manifest: Path, root: Path) -> list[str]:
    """Build the profile and make ``root`` a GC root; ``true`` is the host's."""
    return [
        *_time_machine(guix, channels),
        "shell",
        f"--manifest={manifest}",
        f"--root={root}",
        "--",
        "true",
    ]


# -- what guix prints (pure) ---------------------------------------------------
def channel_commits(channels: str) -> dict[str, str]:
    """``{channel name: commit}`` of a ``guix describe -f channels`` text."""
    found: dict[str, str] = {}
    for chunk in re.split(r"\(channel\b", channels)[1:]:
        name = re.search(r"\(name\s+'([^\s()]+)\)", chunk)
        commit = re.search(r"\(commit\s+\"([0-9a-f]+)\"\)", chunk)
        if name and commit:
            found[name.group(1)] = commit.group(1)
    return found


@dataclass(frozen=True)
class GuixPackage:
    name: str
    version: str


def _spec_name(spec: str) -> tuple[str, str]:
    name, _, version = spec.partition(":")[0].partition("@")
    return name, version


def parse_show(text: str, packages: Sequence[str]) -> tuple[GuixPackage, ...]:
    """The version ``guix show`` gives each of ``packages`` (its first match: the newest)."""
    records: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "+")):
                fields.setdefault(key.strip(), value.strip())
        if "name" in fields and "version" in fields:
            records.append(fields)
    chosen = []
    for spec in packages:
        name, version = _spec_name(spec)
        match = next(
            (
                r
                for r in records
                if r["name"] == name and (not version or r["version"].startswith(version))
            ),
            None,
        )
        if match is None:
            raise GuixResolutionError.unknown_package(spec, output=text[-2000:])
        chosen.append(GuixPackage(match["name"], match["version"]))
    return tuple(sorted(set(chosen), key=lambda p: (p.name, p.version)))


# ---------------------------------------------------------------------------
# the lock
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GuixLockData:
    """The Guix-specific content of a lock (its ``pylock`` text, parsed)."""

    channels: str
    manifest: str
    packages: tuple[GuixPackage, ...]

    def dumps(self) -> str:
        commits = ", ".join(
            f"{n} {c[:12]}" for n, c in sorted(channel_commits(self.channels).items())
        )
        lines = [
            f"# nbseal Guix lock: channels ({commits}) and manifest",
            *toml_assignments(
                {
                    "lock-version": GUIX_LOCK_VERSION,
                    "channels": self.channels,
                    "manifest": self.manifest,
                },
                ascii_only=False,
            ),
        ]
        for package in self.packages:
            lines += toml_table(
                "packages", {"name": package.name, "version": package.version}, ascii_only=False
            )
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str) -> GuixLockData:
        data = backend_lock_data(text, backend="Guix", version=GUIX_LOCK_VERSION)
        return cls(
            channels=str(data["channels"]),
            manifest=str(data["manifest"]),
            packages=tuple(
                GuixPackage(str(p["name"]), str(p["version"])) for p in data.get("packages", [])
            ),
        )


# ---------------------------------------------------------------------------
# running guix
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    returncode: int
    stdout: str
    stderr: str

    def context(self, argv: Sequence[str]) -> str:
        return f"$ {shlex.join(argv)}\n{self.stderr.strip()[-3000:]}"


def _shown(line: str) -> str:
    """What a line of guix's stderr ends as on a terminal (progress bars redraw after \\r)."""
    return line.rpartition("\r")[2].strip()


async def _run(argv: Sequence[str], progress: Progress) -> _Run:
    """Run guix; its stderr (downloads, builds) becomes progress steps."""

    def tell(line: str) -> None:
        if _shown(line):
            progress.step(_shown(line)[:160])

    ran = await run_telling(argv, tell)
    errors = [shown for line in ran.lines if (shown := _shown(line))]
    return _Run(ran.returncode, ran.stdout, "\n".join(errors))


class GuixBackend(Backend):
    """Guix packages into a profile; see the module's docstring."""

    name = "guix"

    def __init__(self, *, roots: Path | None = None) -> None:
        # GC roots of built profiles: outside the store entry, whose path changes on rename.
        self.roots = roots if roots is not None else cache_root() / "guix" / "roots"

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        return guix_kernel_command(env_path, wanted)

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        """Guix seals its own kernels: ``guix shell --container`` (needs Guix)."""
        return GuixLauncher(policy, sealed=sealed)

    def unpinned_note(self, env_name: str, instant: str) -> str:
        return (
            f"environment {env_name!r} uses Guix as installed here; "
            "add `;;guix pin COMMIT` (from `guix describe`) to freeze it"
        )

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        guix = find_guix(_directive(spec.name, spec.requirements, spec.pin))
        packages = guix_packages(spec.requirements)
        commit = guix_commit_of(spec.pin)
        progress.step(
            f"resolving {' '.join(packages)} with Guix "
            + (f"at commit {commit}" if commit else "as installed (no ;;guix pin)")
        )
        described = await _run(describe_argv(guix, commit), progress)
        if described.returncode != 0:
            raise GuixResolutionError.channels_undescribed(
                commit, described.context(describe_argv(guix, commit))
            )
        workdir.mkdir(parents=True, exist_ok=True)
        channels = workdir / "channels.scm"
        channels.write_text(described.stdout)
        outputs = []
        for argv in (manifest_argv(guix, channels, packages), show_argv(guix, channels, packages)):
            run = await _run(argv, progress)
            if run.returncode != 0:
                raise GuixResolutionError.unresolvable(packages, run.context(argv))
            outputs.append(run.stdout)
        data = GuixLockData(described.stdout, outputs[0], parse_show(outputs[1], packages))
        progress.step(f"locked {len(data.packages)} Guix packages")
        return Lock(
            backend=self.name,
            requirements=spec.requirements,
            python="",  # the profile brings its own interpreters
            platform=host_platform(),
            exclude_newer=spec.pin,
            pylock=data.dumps(),
        )

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        packages = guix_packages(lock.requirements)
        guix = find_guix(f"needed to build the locked Guix environment of: {' '.join(packages)}")
        data = GuixLockData.loads(lock.pylock)
        dest.mkdir(parents=True)
        channels, manifest = dest / "channels.scm", dest / "manifest.scm"
        channels.write_text(data.channels)
        manifest.write_text(data.manifest)
        self.roots.mkdir(parents=True, exist_ok=True)
        root = self.roots / lock.key
        progress.step(f"building the Guix profile of {' '.join(packages)}")
        argv = build_argv(guix, channels, manifest, root)
        run = await _run(argv, progress)
        if run.returncode != 0:
            raise GuixError.build_failed(run.context(argv))
        profile = Path(os.path.realpath(root))
        if not prefix_kernelspecs(profile):
            raise GuixError.no_kernel(packages)
        (dest / "profile").symlink_to(profile)


# ---------------------------------------------------------------------------
# the kernel (the proxy's side; needs Guix)
# ---------------------------------------------------------------------------
def guix_kernel_command(env_path: Path, wanted: str | None = None) -> KernelCommand:
    """The kernel of a built Guix environment, as its kernelspec names it.

    The argv is left as written: inside ``guix shell --container`` the
    profile's ``bin`` is on ``PATH`` and its ``/gnu/store`` paths are there.
    """
    profile = guix_profile(env_path)
    specs = prefix_kernelspecs(profile)
    if not specs:
        raise KernelStartError.no_kernel(env_path, holder="Guix environment", hint=GUIX_KERNEL_HINT)
    name, spec, argv = pick_kernelspec(specs, wanted)
    # ipykernel answers interrupt_request; a signal would reach `guix shell`.
    interrupt_mode = "message" if "ipykernel_launcher" in argv else None
    return command_from_spec(name, spec, argv, interrupt_mode)
