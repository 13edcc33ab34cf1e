"""Finding bwrap and telling the user why kernels cannot be sealed."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nbseal.errors import SandboxUnavailableError
from nbseal.sandbox import BwrapLauncher, SandboxPolicy, check_sandbox, find_bwrap
from nbseal.sandbox.available import BWRAP_ENV_VAR
from nbseal.sandbox.launch import LaunchRequest


def test_the_sandbox_works_here() -> None:
    bwrap = find_bwrap()
    assert os.access(bwrap, os.X_OK)
    check_sandbox()  # raises if it does not


def test_a_missing_binary_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bwrap"
    monkeypatch.setenv(BWRAP_ENV_VAR, str(missing))
    with pytest.raises(SandboxUnavailableError) as caught:
        check_sandbox()
    assert str(missing) in caught.value.message
    assert BWRAP_ENV_VAR in caught.value.hint


def test_a_failing_binary_is_reported_with_the_remedies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BWRAP_ENV_VAR, "/bin/false")
    with pytest.raises(SandboxUnavailableError) as caught:
        check_sandbox()
    error = caught.value
    assert "cannot create a sandbox here (exit code 1)" in error.message
    assert "kernel.unprivileged_userns_clone=1" in error.hint
    assert "nbseal run --no-sandbox" in error.hint
    assert "hint:" in error.render()


def test_bwrap_s_own_words_are_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a bwrap says where user namespaces are off reaches the user."""
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the "
        "kernel does not allow non-privileged user namespaces.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv(BWRAP_ENV_VAR, str(fake))
    with pytest.raises(SandboxUnavailableError) as caught:
        check_sandbox()
    assert "No permissions to create new namespace" in caught.value.context


def test_launch_refuses_when_the_sandbox_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BWRAP_ENV_VAR, "/bin/false")
    launcher = BwrapLauncher(SandboxPolicy(workdir=tmp_path))
    request = LaunchRequest(
        ["/bin/true"],
        env={},
        cwd=tmp_path,
        env_path=tmp_path,
        socket_dir=tmp_path,
        log_path=tmp_path / "log",
    )
    with pytest.raises(SandboxUnavailableError):
        asyncio.run(launcher.launch(request))
