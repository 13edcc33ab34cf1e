"""Headless runs talk to their proxy over ipc sockets in the run's private folder."""

from __future__ import annotations

from pathlib import Path

from nbseal.runner import _private_transport


def test_a_run_folder_gets_ipc_sockets_inside_it(tmp_path: Path) -> None:
    chosen = _private_transport(tmp_path)
    assert chosen == {"transport": "ipc", "ip": str(tmp_path / "k")}


def test_a_folder_too_deep_for_a_socket_path_keeps_tcp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    assert _private_transport(deep) == {}
