"""What a notebook's grants let a kernel reach beyond its sandbox and working directory."""

from __future__ import annotations

from pathlib import Path

from nbseal.kernel.grants import Grants


def test_a_sealed_kernel_without_network_or_writable_share_leaves_no_trace(tmp_path: Path) -> None:
    grants = Grants(tmp_path / "work", tmp_path)
    assert grants.traceless()
    grants.shares[tmp_path / "inputs"] = "ro"
    assert grants.traceless(), "a read-only share takes no writes"


def test_network_a_writable_share_a_kept_workdir_or_no_sandbox_leave_traces(
    tmp_path: Path,
) -> None:
    assert not Grants(tmp_path / "work", tmp_path, network=True).traceless()
    assert not Grants(tmp_path / "work", tmp_path, workdir_kept=True).traceless()
    assert not Grants(tmp_path / "work", tmp_path, sealed=False).traceless()
    writable = Grants(tmp_path / "work", tmp_path)
    writable.shares[tmp_path / "results"] = "rw"
    assert not writable.traceless()
