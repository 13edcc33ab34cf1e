"""Comms across several kernels: which kernel owns a comm, and widget state fan-out.

A frontend believes it talks to one kernel. Widgets created in environment A
live in A's kernel even while environment B is current, so the proxy routes a
comm's messages to the kernel that opened it. Two requests ask about *all*
comms at once and must be answered for every kernel together:

- ``comm_info_request`` (the frontend lists comms after a page reload);
- the ``jupyter.widget.control`` comm, whose ``request_states`` message makes
  ipywidgets send one ``update_states`` holding every widget's state. The
  frontend takes the first answer it gets, so the proxy asks every kernel and
  publishes one merged answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbseal.kernel.subkernel import SubKernel

__all__ = ["CONTROL_TARGET", "ControlFanOut", "StateAnswer", "merge_comm_infos", "merge_states"]

# ipywidgets >= 8: one comm through which the frontend asks for all widget states.
CONTROL_TARGET = "jupyter.widget.control"


@dataclass(frozen=True)
class StateAnswer:
    """One kernel's ``update_states`` message: content and binary buffers."""

    content: dict[str, Any]
    buffers: list[bytes]


def merge_states(answers: list[StateAnswer]) -> StateAnswer:
    """One ``update_states`` holding the widgets of every kernel.

    Model ids are UUIDs, so the kernels' states never collide; buffer paths
    index into ``states`` and buffers follow their paths in order, so both
    lists are concatenated in the same order.
    """
    states: dict[str, Any] = {}
    paths: list[Any] = []
    buffers: list[bytes] = []
    for answer in answers:
        data = answer.content.get("data", {})
        states.update(data.get("states", {}))
        paths.extend(data.get("buffer_paths", []))
        buffers.extend(answer.buffers)
    first = answers[0].content if answers else {}
    data = {"method": "update_states", "states": states, "buffer_paths": paths}
    return StateAnswer({**first, "data": data}, buffers)


def merge_comm_infos(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``comm_info_reply`` listing the comms of every kernel."""
    comms: dict[str, Any] = {}
    for reply in replies:
        comms.update(reply.get("comms", {}))
    return {"status": "ok", "comms": comms}


@dataclass
class ControlFanOut:
    """A widget control comm the frontend opened, open in every running kernel."""

    comm_id: str
    kernels: list[SubKernel]
    # The request_states being answered: its header, the answers so far, and
    # which kernels still owe one.
    parent: dict[str, Any] | None = None
    answers: dict[int, StateAnswer] = field(default_factory=dict)
    waiting: set[int] = field(default_factory=set)
    deadline: asyncio.TimerHandle | None = None

    def ask(self, parent: dict[str, Any]) -> None:
        self.parent = parent
        self.answers.clear()
        self.waiting = {id(k) for k in self.kernels if k.alive}

    def drop(self, kernel: SubKernel) -> None:
        """``kernel`` closed the comm (no ipywidgets there) or died."""
        self.kernels = [k for k in self.kernels if k is not kernel]
        self.waiting.discard(id(kernel))

    def answer(self, kernel: SubKernel, answer: StateAnswer) -> None:
        self.answers[id(kernel)] = answer
        self.waiting.discard(id(kernel))

    def complete(self) -> bool:
        return self.parent is not None and not self.waiting

    def take(self) -> tuple[dict[str, Any], StateAnswer] | None:
        """The merged answer and its parent, once; None if nobody answered."""
        parent, answers = self.parent, list(self.answers.values())
        self.parent = None
        self.answers.clear()
        self.waiting.clear()
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if parent is None or not answers:
            return None
        return parent, merge_states(answers)
