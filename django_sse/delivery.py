"""A published event as each process holds it: its id, its wire bytes, and data for filters.

One ``Delivery`` is built per event per process and shared by every local subscriber: the wire
bytes are encoded once, and the data is decoded from JSON only if a filter asks for it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import from_json

from .encoding import EncodedEvent

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


class Delivery:
    """One event of a group, with its id assigned and its bytes ready for the wire."""

    __slots__ = ("_data", "event", "group", "id", "is_json", "key", "payload", "wire")

    def __init__(
        self,
        *,
        group: str,
        id: str,
        wire: bytes,
        event: str | None = None,
        payload: bytes | None = None,
        is_json: bool = True,
    ) -> None:
        self.group = group
        self.id = id
        self.key: EventKey = parse_id(id) or (0, 0)
        self.wire = wire if isinstance(wire, EncodedEvent) else EncodedEvent(wire)
        self.event = event
        self.payload = payload
        self.is_json = is_json
        self._data: Any = _UNSET

    @property
    def data(self) -> Any:
        """The event's data: decoded JSON (``data=``), a str (``raw_data=``), or ``None``."""
        if self._data is _UNSET:
            if self.payload is None:
                self._data = None
            elif self.is_json:
                self._data = from_json(self.payload)
            else:
                self._data = self.payload.decode("utf-8", "replace")
        return self._data

    def message(self) -> dict[str, Any]:
        """The channel-layer message carrying this event to every process."""
        return {
            "type": MESSAGE_TYPE,
            "group": self.group,
            "id": self.id,
            "wire": bytes(self.wire),
            "event": self.event,
            "payload": self.payload,
            "json": self.is_json,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Delivery:
        return cls(
            group=message["group"],
            id=message["id"],
            wire=message["wire"],
            event=message.get("event"),
            payload=message.get("payload"),
            is_json=message.get("json", True),
        )

    def __repr__(self) -> str:
        return f"<Delivery {self.group} id={self.id} event={self.event}>"


def with_id(body: bytes, event_id: str) -> bytes:
    """Complete an encoded event whose blank line was left off with its ``id`` field.

    Field order inside an event does not matter to clients, so the id can be appended once the
    replay log has assigned it, without encoding the event again.
    """
    return body + b"id: " + event_id.encode("ascii") + b"\n\n"
