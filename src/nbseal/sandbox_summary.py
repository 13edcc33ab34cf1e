"""What the sandbox grants a notebook, from its own directives (``nbseal run``'s first line)."""

from __future__ import annotations

from pathlib import Path

from nbseal.notebook import code_sources, read_notebook
from nbseal.plan import plan_notebook
from nbseal.sandbox.identity import sandbox_identity
from nbseal.sandbox.limits import memory_cgroup_parent
from nbseal.sandbox.policy import UNSEALED_SUMMARY, grants_summary

__all__ = ["sandbox_line"]


def sandbox_line(notebook: Path, *, sealed: bool) -> str:
    """What the sandbox grants this notebook, from its own directives."""
    if not sealed:
        return UNSEALED_SUMMARY
    plan = plan_notebook(code_sources(read_notebook(notebook)))
    folder = notebook.resolve().parent
    shares = [
        ((folder / Path(share.path).expanduser()).resolve(), share.mode, share.path)
        for share in plan.shares
    ]
    machine = sandbox_identity().describe()
    enforced = memory_cgroup_parent()
    if isinstance(enforced, str):
        machine += f"; memory not capped here ({enforced})"
    return grants_summary(
        network=plan.network,
        shares=shares,
        limits=plan.limits,
        machine=machine,
        javascript=plan.javascript,
    )
