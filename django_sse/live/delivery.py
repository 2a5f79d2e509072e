"""A published event as each process holds it: its id, its wire bytes, and data for filters.

One ``PublishedEvent`` is built per event per process and shared by every local subscriber:
the wire bytes are encoded once, and the data is decoded from JSON only if a filter asks for it.

The payload a filter reads is, for almost every event, the text of the wire's one ``data:``
line: it is then cut out of the wire bytes when asked for, not carried (through the broker, in
the replay log) a second time. Only a ``raw_data`` of several lines carries it separately.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic_core import from_json

from ..encoding import EncodedEvent

MESSAGE_TYPE = "django_sse.event"

_ID = re.compile(r"(\d{1,20})-(\d{1,20})")

EventKey = tuple[int, int]

_MAX_PART = 2**64 - 1


def parse_id(value: str | None) -> EventKey | None:
    """Order an id of the form ``<milliseconds or epoch>-<sequence>``; ``None`` if it is not one."""
    if value is None:
        return None
    match = _ID.fullmatch(value)
    if match is None:
        return None
    key = int(match[1]), int(match[2])
    # Redis stream ids are two unsigned 64-bit integers: a larger one makes XRANGE fail.
    if key[0] > _MAX_PART or key[1] > _MAX_PART:
        return None
    return key


_UNSET: Any = object()


class PublishedEvent:
    """One event of a group, with its id assigned and its bytes ready for the wire."""

    __slots__ = (
        "_data",
        "_payload",
        "event",
        "group",
        "id",
        "is_json",
        "origin",
        "position",
        "wire",
    )

    def __init__(
        self,
        *,
        group: str,
        id: str,
        wire: bytes,
        event: str | None = None,
        payload: bytes | None = None,
        is_json: bool | None = True,
        origin: str | None = None,
    ) -> None:
        self.group = group
        self.id = id
        self.position: EventKey = parse_id(id) or (0, 0)
        self.wire = wire if isinstance(wire, EncodedEvent) else EncodedEvent(wire)
        self.event = event
        # ``None``: the event has data, and it is the wire's single ``data:`` line.
        self._payload = payload
        # True: JSON (``data=``); False: text (``raw_data=``); None: the event has no data.
        self.is_json = is_json
        # The replay log that numbered it, when that log is this process's own (see hub.py).
        self.origin = origin
        self._data: Any = _UNSET

    @property
    def payload(self) -> bytes | None:
        """The event's data as published: JSON bytes, or the ``raw_data`` text encoded."""
        if self._payload is None and self.is_json is not None:
            self._payload = data_line(self.wire)
        return self._payload

    @property
    def data(self) -> Any:
        """The event's data: decoded JSON (``data=``), a str (``raw_data=``), or ``None``."""
        if self._data is _UNSET:
            payload = self.payload
            if payload is None:
                self._data = None
            elif self.is_json:
                self._data = from_json(payload)
            else:
                self._data = payload.decode("utf-8", "replace")
        return self._data

    def copy(self) -> PublishedEvent:
        """The same event without what a filter decoded (a log's entries must not keep it)."""
        return PublishedEvent(
            group=self.group,
            id=self.id,
            wire=self.wire,
            event=self.event,
            payload=self._payload,
            is_json=self.is_json,
            origin=self.origin,
        )

    def message(self) -> dict[str, Any]:
        """The channel-layer message carrying this event to every process."""
        message = {
            "type": MESSAGE_TYPE,
            "group": self.group,
            "id": self.id,
            "wire": bytes(self.wire),
            "event": self.event,
            "json": self.is_json,
            "origin": self.origin,
            "t": time.time(),  # when it was published: the publish-to-write latency (metrics.py)
        }
        if self._payload is not None:  # only when the wire does not hold it as one line
            message["payload"] = self._payload
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PublishedEvent:
        return cls(
            group=message["group"],
            id=message["id"],
            wire=message["wire"],
            event=message.get("event"),
            payload=message.get("payload"),
            is_json=message.get("json", True),
            origin=message.get("origin"),
        )

    def __repr__(self) -> str:
        return f"<PublishedEvent {self.group} id={self.id} event={self.event}>"


def data_line(wire: bytes) -> bytes | None:
    """The value of the last ``data:`` line of an encoded event (before its ``id`` line)."""
    end = len(wire) - 2 if wire.endswith(b"\n\n") else len(wire)
    start = wire.rfind(b"\n", 0, end) + 1
    if wire.startswith(b"id: ", start):
        end = start - 1
        start = wire.rfind(b"\n", 0, end) + 1
    if not wire.startswith(b"data: ", start):
        return None
    return wire[start + 6 : end]


def format_id(key: EventKey) -> str:
    return f"{key[0]}-{key[1]}"


def with_id(body: bytes, event_id: str) -> bytes:
    """Complete an encoded event whose blank line was left off with its ``id`` field.

    Field order inside an event does not matter to clients, so the id can be appended once the
    replay log has assigned it, without encoding the event again.
    """
    return body + b"id: " + event_id.encode("ascii") + b"\n\n"
