"""The Jupyter wire format the proxy speaks: JSON parts signed with HMAC.

A small, dependency-free counterpart of ``jupyter_client.session.Session``
holding only what the proxy needs (sign, pack, unpack, build, serialize).
Importing jupyter_client costs about 100 ms at every kernel start, which a
frontend waits for; this module costs next to nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any

__all__ = ["DELIM", "PROTOCOL_VERSION", "WireSession"]

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class WireSession:
    """Signs and builds messages with a connection's key and scheme."""

    def __init__(
        self, key: bytes, signature_scheme: str = "hmac-sha256", username: str = ""
    ) -> None:
        self.key = key
        self.signature_scheme = signature_scheme
        scheme, _, digest = signature_scheme.partition("-")
        if scheme != "hmac" or not hasattr(hashlib, digest):
            raise ValueError(f"unsupported signature scheme {signature_scheme!r}")
        self._digest = getattr(hashlib, digest)
        self.username = username or os.environ.get("USER", "nbseal")
        self.session_id = uuid.uuid4().hex

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        mac = hmac.new(self.key, digestmod=self._digest)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    @staticmethod
    def pack(value: object) -> bytes:
        return json.dumps(
            value, default=_json_default, ensure_ascii=False, allow_nan=False
        ).encode()

    @staticmethod
    def unpack(data: bytes) -> Any:
        return json.loads(data)

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": PROTOCOL_VERSION,
        }
        return {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": msg_type,
            "parent_header": dict(parent or {}),
            "metadata": dict(metadata or {}),
            "content": content,
        }

    def serialize(self, msg: dict[str, Any], ident: list[bytes] | None = None) -> list[bytes]:
        parts = [
            self.pack(msg["header"]),
            self.pack(msg["parent_header"]),
            self.pack(msg["metadata"]),
            self.pack(msg["content"]),
        ]
        return [*(ident or []), DELIM, self.sign(parts), *parts]
