"""A fourth backend needs nothing outside nbseal.backends: a stand-in, end to end.

The stand-in claims requirements ``stub:NAME``. Its build writes a tree that
holds one kernelspec, which starts the host's ipykernel (this interpreter's
``-m ipykernel_launcher``) with a variable naming the packages. Registered
through :func:`nbseal.backends.register_backend` only, it is resolved and built
by :mod:`nbseal.environments` into a real store, its kernel is found and
launched through the Backend interface and runs code in a real
:class:`~nbseal.kernel.subkernel.SubKernel`, and ``#seal describe`` shows the
row its backend adds to.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from nbseal.backends import (
    Backend,
    backend_for,
    backend_for_requirements,
    register_backend,
    registered_backends,
    unregister_backend,
)
from nbseal.backends.kernelspecs import (
    PREFIX_KERNEL_DIR,
    KernelCommand,
    command_from_spec,
    pick_kernelspec,
    read_kernelspecs,
)
from nbseal.environments import realize, resolve
from nbseal.kernel.describe import describe_bundle
from nbseal.kernel.pool import EnvironmentSlot
from nbseal.lock import Lock
from nbseal.plan import Declaration, EnvironmentSpec, host_platform
from nbseal.progress import Progress
from nbseal.sandbox import SandboxPolicy
from nbseal.sandbox.launch import DirectLauncher, Launcher
from nbseal.store import EnvironmentStore
from tests.sandbox.helpers import LoopThread, SealedKernel

PREFIX = "stub:"


class StubBackend(Backend):
    """Packages ``stub:NAME`` at version 1.0; the kernel is the host's ipykernel."""

    name = "stub"
    builds: list[str] = []  # lock keys, in build order (one instance per use)

    async def resolve(self, spec: EnvironmentSpec, workdir: Path, progress: Progress) -> Lock:
        names = sorted(r[len(PREFIX) :] for r in spec.requirements)
        pylock = "".join(f'[[packages]]\nname = "{n}"\nversion = "1.0"\n\n' for n in names)
        return Lock(self.name, spec.requirements, "", host_platform(), spec.pin, pylock)

    async def build(self, lock: Lock, dest: Path, progress: Progress) -> None:
        StubBackend.builds.append(lock.key)
        kernel_dir = dest / PREFIX_KERNEL_DIR / "stub"
        kernel_dir.mkdir(parents=True)
        greeting = "hello from " + " ".join(p.name for p in lock.packages())
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Stub",
            "language": "python",
            "interrupt_mode": "message",
            "env": {"STUB_GREETING": greeting},
        }
        (kernel_dir / "kernel.json").write_text(json.dumps(spec))

    def kernel_command(self, env_path: Path, wanted: str | None = None) -> KernelCommand:
        name, spec, argv = pick_kernelspec(read_kernelspecs(env_path / PREFIX_KERNEL_DIR), wanted)
        return command_from_spec(name, spec, argv)

    def launcher(self, policy: SandboxPolicy, *, sealed: bool) -> Launcher:
        return DirectLauncher()  # a stand-in: the host's ipykernel, not sealed

    def describe(self, lock: Lock | None) -> dict[str, Any] | None:
        if lock is None:
            return {"source": "stub (not resolved yet)"}
        return {"source": f"stub packages: {', '.join(p.name for p in lock.packages())}"}

    def unpinned_note(self, env_name: str, instant: str) -> str:
        return f"stub environment {env_name!r} is never pinned"

    def collect_garbage(self, locks: Sequence[Lock]) -> str | None:
        return f"stub: {sum(lock.backend == self.name for lock in locks)} stub locks kept"


class StubKernel(SealedKernel):
    """A SubKernel whose command and launcher come from the backend, as the proxy gets them."""

    def __init__(
        self,
        loop: LoopThread,
        backend: Backend,
        env_path: Path,
        policy: SandboxPolicy,
        runtime_dir: Path,
    ) -> None:
        super().__init__(loop, env_path, policy, runtime_dir)
        self.backend = backend
        self.launcher = backend.launcher(policy, sealed=True)  # type: ignore[assignment]

    def command(self) -> KernelCommand:
        return self.backend.kernel_command(self.env_path)


@pytest.fixture
def stub_backend() -> Iterator[None]:
    register_backend(StubBackend.name, StubBackend, prefix=PREFIX)
    StubBackend.builds = []
    yield
    unregister_backend(StubBackend.name)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short, like the proxy's: ipc socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="nbseal-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_registry_finds_the_stand_in_by_its_prefix_and_its_name(stub_backend: None) -> None:
    assert backend_for_requirements(("stub:hello", "stub:world")).name == "stub"
    assert backend_for("stub").name == "stub"
    # Not every requirement is the stand-in's: the default (PyPI) backend's.
    assert backend_for_requirements(("stub:hello", "six")).name == "uv"
    assert backend_for_requirements(("deb:bash",)).name == "deb"
    assert "stub" in [b.name for b in registered_backends()]
    with pytest.raises(ValueError, match="already claims prefix 'deb:'"):
        register_backend("other", StubBackend, prefix="deb:")


def test_a_stand_in_backend_builds_starts_and_describes_its_kernel(
    stub_backend: None, tmp_path: Path, runtime_dir: Path
) -> None:
    store = EnvironmentStore(tmp_path / "store")
    spec = EnvironmentSpec("st", ("stub:hello", "stub:world"), "2026-11-01T00:00:00Z")
    lock = asyncio.run(resolve(spec, store, Progress("st")))
    assert lock.backend == "stub"
    assert lock.python == ""  # the default interpreter_key: the host's is no part of it
    built = asyncio.run(realize(spec, store, Progress("st"), lock=lock))
    assert not built.reused
    assert StubBackend.builds == [lock.key]
    again = asyncio.run(realize(spec, store, Progress("st")))  # the resolution is remembered
    assert again.reused
    assert again.path == built.path
    assert StubBackend.builds == [lock.key]

    backend = backend_for(built.lock.backend)
    command = backend.kernel_command(built.path)
    assert command.name == "stub"
    assert command.env == {"STUB_GREETING": "hello from hello world"}

    workdir = tmp_path / "work"
    workdir.mkdir()
    loop = LoopThread()
    kernel = StubKernel(loop, backend, built.path, SandboxPolicy(workdir=workdir), runtime_dir)
    try:
        kernel.start()
        assert kernel.value("__import__('os').environ['STUB_GREETING']") == "hello from hello world"
        assert kernel.value("__import__('os').getcwd()") == str(workdir)
        slot = EnvironmentSlot(
            Declaration("st", spec.requirements, spec.pin), spec, built.lock, built, kernel.sub
        )
        later = EnvironmentSpec("later", ("stub:x",), "2026-11-01")
        waiting = EnvironmentSlot(Declaration("later", later.requirements, later.pin), later)
        bundle = describe_bundle({"st": slot, "later": waiting}, "st", "unsealed")
    finally:
        kernel.stop()
        loop.close()
    rows = {
        row["environment"].split()[0]: row for row in bundle["application/vnd.nbseal.describe+json"]
    }
    assert rows["st"]["kernel"] == "stub"
    assert rows["st"]["language"] == "python"
    assert rows["st"]["packages"] == ["hello==1.0", "world==1.0"]
    assert rows["st"]["store key"] == built.key[:12]
    assert rows["st"]["source"] == "stub packages: hello, world"
    assert rows["later"]["source"] == "stub (not resolved yet)"
    assert "<th>source</th>" in bundle["text/html"]
    assert "    stub packages: hello, world" in bundle["text/plain"]

    assert backend.unpinned_note("st", "now") == "stub environment 'st' is never pinned"
    # (Only the stand-in's: Debian's would clean the .deb cache other tests share.)
    locks = [lock for _, lock in store.locks()]
    assert backend.collect_garbage(locks) == "stub: 1 stub locks kept"
