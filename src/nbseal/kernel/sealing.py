"""The output policy on the wire: every path a sub-kernel's output takes to the page.

:mod:`nbseal.outputs` says what a sealed output may hold; this module finds
the outputs in the messages a sub-kernel sends, wherever they are:
``display_data``, ``update_display_data`` and ``execute_result`` on iopub;
the ``page`` payload of an ``execute_reply`` and the bundle of an
``inspect_reply`` on shell; the state of widget models (``comm_open``,
``comm_msg`` updates, and the ``update_states`` answer the proxy merges),
including the outputs an Output widget holds. A message is decoded only when
it can carry an output, and re-signed only when the policy changed it.

Whatever the policy, a sub-kernel may not write nbseal's own MIME types
(``application/vnd.nbseal.*``): only the proxy does (locks, progress,
describe).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from nbseal.kernel.comms import StateAnswer
from nbseal.kernel.session import WireSession
from nbseal.kernel.wire import RawMessage
from nbseal.outputs import PASSIVE_TYPES, seal_bundle, seal_widget_state

__all__ = ["OUTPUT_TYPES", "OutputSeal"]

log = logging.getLogger("nbseal.kernel")

OUTPUT_TYPES = frozenset({"display_data", "update_display_data", "execute_result"})
_WIDGET_TARGET = "jupyter.widget"
_NBSEAL_MIME_PREFIX = "application/vnd.nbseal."
# A content frame worth decoding when the policy is off: it names nbseal, or
# escapes characters (JSON may spell a key as "vnd\u002enbseal").
_MAY_FORGE = re.compile(rb"(?i)nbseal|\\u")
# One JSON string (the unrolled form: linear in its length), and whether a
# colon follows it, which makes it an object key. Matched one after another
# from the frame's start, strings stay aligned: JSON has no quote outside them.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?')
_PASSIVE_KEYS = frozenset(mime.encode() for mime in PASSIVE_TYPES)
# Larger frames are decoded anyway: json.loads is as fast as a scan there.
_FAST_PATH_LIMIT = 64 * 1024


def _passive_only(frame: bytes) -> bool:
    """True when every MIME-like key in ``frame`` is passive: the policy would change nothing.

    A key with an escape (JSON may spell ``text/html`` as ``text\\/html`` or
    with ``\\u``) sends the message the slow way, which decodes it; so does a
    frame that is large, or not JSON-shaped.
    """
    if len(frame) > _FAST_PATH_LIMIT or not frame.startswith(b"{"):
        return False
    keys = []
    for match in _STRING.finditer(frame):
        if match.group(1) is None:
            continue
        key = match.group(0)[1 : match.group(0).rindex(b'"')]
        if b"/" in key or b"\\" in key:
            keys.append(key)
    return bool(keys) and all(key in _PASSIVE_KEYS for key in keys)


def _without_forgeries(data: Mapping[str, Any], metadata: Mapping[str, Any]) -> tuple[Any, Any]:
    forged = [key for key in data if str(key).lower().startswith(_NBSEAL_MIME_PREFIX)]
    if not forged:
        return data, metadata
    log.warning("dropped %s from a sub-kernel's output: only nbseal writes them", forged)
    kept = {key: value for key, value in data.items() if key not in forged}
    return kept, {key: value for key, value in metadata.items() if key not in forged}


class OutputSeal:
    """The policy applied to one proxy's sub-kernels; ``active`` says whether it is on."""

    def __init__(self, session: WireSession, active: Callable[[], bool]) -> None:
        self.session = session
        self.active = active
        # comm_id -> (model module, model name) of the widgets the page knows.
        self._widgets: dict[str, tuple[str, str]] = {}
        # Widgets the policy refused: their later messages go nowhere.
        self._refused: set[str] = set()

    def output(self, message: RawMessage) -> RawMessage:
        """A display_data, update_display_data or execute_result, sealed."""
        active = self.active()
        if len(message.frames) < 5:
            return message
        frame = message.frames[4]
        if not active and not _MAY_FORGE.search(frame):
            return message  # the common case when the policy is off: nothing decoded
        if active and _passive_only(frame):
            return message  # text, images, JSON: nothing to clean, nothing decoded
        content = message.content(self.session)
        data, metadata = content.get("data"), content.get("metadata") or {}
        if not isinstance(data, dict) or not isinstance(metadata, dict):
            return message
        sealed_data, sealed_metadata = self._bundle(data, metadata, active)
        if sealed_data is data and sealed_metadata is metadata:
            return message
        content = {**content, "data": sealed_data, "metadata": sealed_metadata}
        return message.with_part(self.session, 4, content)

    def _bundle(
        self, data: dict[str, Any], metadata: dict[str, Any], active: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(data, metadata)``, the same objects when nothing changed."""
        kept, kept_metadata = _without_forgeries(data, metadata)
        if not active:
            return kept, kept_metadata
        sealed, sealed_metadata, withheld = seal_bundle(kept, kept_metadata)
        if sealed == data and sealed_metadata == metadata:
            return data, metadata
        if withheld:
            log.info("withheld %s from the page", withheld)
        return sealed, sealed_metadata

    def reply(self, msg_type: str, message: RawMessage) -> RawMessage:
        """A shell reply whose bundle the page renders (the pager, the inspector), sealed."""
        if msg_type not in {"execute_reply", "inspect_reply"} or not self.active():
            return message
        content = message.content(self.session)
        changed = False
        if msg_type == "inspect_reply" and isinstance(content.get("data"), dict):
            data, metadata = self._bundle(content["data"], content.get("metadata") or {}, True)
            changed = data is not content["data"]
            content = {**content, "data": data, "metadata": metadata}
        payloads = content.get("payload")
        if msg_type == "execute_reply" and isinstance(payloads, list):
            sealed = []
            for payload in payloads:
                if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
                    data, _ = self._bundle(payload["data"], {}, True)
                    changed = changed or data is not payload["data"]
                    payload = {**payload, "data": data}
                sealed.append(payload)
            content = {**content, "payload": sealed}
        return message.with_part(self.session, 4, content) if changed else message

    # -- widgets -------------------------------------------------------------------
    def comm(self, msg_type: str, message: RawMessage) -> RawMessage | None:
        """A widget's comm_open or comm_msg from a sub-kernel, sealed; None: drop it."""
        if not self.active():
            return message
        content = message.content(self.session)
        comm_id = str(content.get("comm_id", ""))
        if comm_id in self._refused:
            if msg_type == "comm_close":
                self._refused.discard(comm_id)
            return None
        data = content.get("data")
        if not isinstance(data, dict):
            return message
        if msg_type == "comm_open":
            if content.get("target_name") != _WIDGET_TARGET:
                return message
            opened = data.get("state")
            if not isinstance(opened, dict):
                return message
            model = (str(opened.get("_model_module", "")), str(opened.get("_model_name", "")))
            self._widgets[comm_id] = model
        elif msg_type == "comm_msg" and comm_id in self._widgets:
            if data.get("method") not in {"update", "echo_update"}:
                return message
            model = self._widgets[comm_id]
        else:
            if msg_type == "comm_close":
                self._widgets.pop(comm_id, None)
            return message
        state = data.get("state")
        if not isinstance(state, dict):
            return message
        sealed = seal_widget_state(*model, state)
        if sealed is None:
            log.warning("refused widget %s (%s): it brings its own JavaScript", comm_id, model)
            self._refused.add(comm_id)
            self._widgets.pop(comm_id, None)
            return None
        if sealed == state:
            return message
        content = {**content, "data": {**data, "state": sealed}}
        return message.with_part(self.session, 4, content)

    def states(self, answer: StateAnswer) -> StateAnswer:
        """One kernel's ``update_states`` (every widget's state at once), sealed."""
        if not self.active():
            return answer
        data = answer.content.get("data", {})
        states = data.get("states", {})
        sealed_states: dict[str, Any] = {}
        refused: set[str] = set()
        for comm_id, entry in states.items():
            model = (str(entry.get("model_module", "")), str(entry.get("model_name", "")))
            sealed = seal_widget_state(*model, entry.get("state", {}))
            if sealed is None:
                refused.add(comm_id)
                self._refused.add(comm_id)
                continue
            self._widgets[comm_id] = model
            sealed_states[comm_id] = {**entry, "state": sealed}
        # Buffers follow their paths in order: a refused model's go with it.
        paths, buffers = [], []
        for path, buffer in zip(data.get("buffer_paths", []), answer.buffers, strict=False):
            if path and path[0] not in refused:
                paths.append(path)
                buffers.append(buffer)
        sealed_data = {**data, "states": sealed_states, "buffer_paths": paths}
        return StateAnswer({**answer.content, "data": sealed_data}, buffers)
