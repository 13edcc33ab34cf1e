"""Jupyter wire-format helpers: split, verify and re-sign raw multipart messages.

The proxy forwards most messages as the raw frames it received; only the few
it must change (execution counts, stripped directive lines) are decoded and
re-signed with the shared key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, TypedDict

from nbseal.kernel.session import DELIM, WireSession

__all__ = ["DELIM", "Header", "RawMessage", "resign", "split_frames"]


class Header(TypedDict, total=False):
    msg_id: str
    msg_type: str
    session: str
    username: str
    date: str
    version: str
    subshell_id: str | None


@dataclass
class RawMessage:
    """A message as frames: routing identities, then signature and body parts."""

    idents: list[bytes]
    frames: list[bytes]  # [signature, header, parent, metadata, content, *buffers]
    # Parts already decoded: the relay looks at a header several times.
    _decoded: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def signature(self) -> bytes:
        return self.frames[0]

    def part(self, session: WireSession, index: int) -> dict[str, Any]:
        """The decoded part (shared: callers that change it re-encode with ``with_part``)."""
        decoded = self._decoded.get(index)
        if decoded is None:
            value = session.unpack(self.frames[index])
            decoded = value if isinstance(value, dict) else {}
            self._decoded[index] = decoded
        return decoded

    def header(self, session: WireSession) -> Header:
        return self.part(session, 1)  # type: ignore[return-value]

    def parent(self, session: WireSession) -> Header:
        return self.part(session, 2)  # type: ignore[return-value]

    def content(self, session: WireSession) -> dict[str, Any]:
        return self.part(session, 4)

    def verify(self, session: WireSession) -> bool:
        if len(self.frames) < 5:
            return False
        if not session.key:
            return True
        expected = session.sign(self.frames[1:5])
        return hmac.compare_digest(expected, self.signature)

    def with_part(self, session: WireSession, index: int, value: dict[str, Any]) -> RawMessage:
        frames = list(self.frames)
        frames[index] = session.pack(value)
        return RawMessage(list(self.idents), resign(session, frames))

    def wire(self) -> list[bytes]:
        return [*self.idents, DELIM, *self.frames]


def split_frames(frames: list[bytes]) -> RawMessage:
    try:
        at = frames.index(DELIM)
    except ValueError as exc:
        raise ValueError("not a Jupyter message: no delimiter frame") from exc
    return RawMessage(frames[:at], frames[at + 1 :])


def resign(session: WireSession, frames: list[bytes]) -> list[bytes]:
    return [session.sign(frames[1:5]), *frames[1:]]
