"""Sealing kernels: what they may see (:mod:`.policy`) and how (:mod:`.bwrap`)."""

from __future__ import annotations

from nbseal.sandbox.available import check_sandbox, find_bwrap
from nbseal.sandbox.bwrap import BwrapLauncher
from nbseal.sandbox.policy import SandboxPolicy, Share

__all__ = ["BwrapLauncher", "SandboxPolicy", "Share", "check_sandbox", "find_bwrap"]
