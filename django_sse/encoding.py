"""The SSE wire format (WHATWG HTML, "Server-sent events", section 9.2).

Clients end a line at CRLF, lone LF or lone CR, and nothing else: ``str.splitlines`` would also
split at VT, FF, NEL, U+2028 ... which are ordinary characters in an event stream. Every field is
written as ``name: value`` (clients strip exactly one space after the colon, so a value that
starts with a space survives), lines end with LF, and a blank line dispatches the event.
"""

from __future__ import annotations

import random
import re
from typing import Any

from django.utils.functional import Promise
from pydantic_core import to_json

from .events import ServerSentEvent

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

PING = b": ping\n\n"


def jittered_retry(bounds_ms: tuple[int, int]) -> bytes:
    """A ``retry:`` field of a random delay within ``bounds_ms``, ending the event block.

    Streams that end together (a failure, a server stop) tell their clients different delays,
    so that they do not all come back in the same instant.
    """
    return b"retry: %d\n\n" % random.randint(*bounds_ms)


class EncodedEvent(bytes):
    """Bytes already in wire format (one or more complete events): sent as they are.

    ``publish`` encodes an event once (publish.py); each process's hub hands the same object
    to every local subscriber.
    """


def split_lines(text: str) -> list[str]:
    """Split ``text`` at CRLF, LF and lone CR, exactly as an SSE client does."""
    if "\n" not in text and "\r" not in text:
        return [text]
    return _LINE_BREAK.split(text)


def _json_fallback(value: Any) -> Any:
    if isinstance(value, Promise):  # lazy translation strings
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_bytes(value: Any) -> bytes:
    """JSON-encode ``value`` compactly; NaN and infinities become null, as in JSON.stringify."""
    return to_json(value, fallback=_json_fallback, inf_nan_mode="null")


def _field_lines(name: bytes, text: str) -> list[bytes]:
    return [name + line.encode("utf-8", "replace") + b"\n" for line in split_lines(text)]


def encode_event(event: ServerSentEvent) -> bytes:
    """Encode one event; an event with no field at all encodes to ``b""`` (nothing to send)."""
    parts: list[bytes] = []
    if event.comment is not None:
        parts += _field_lines(b": ", event.comment)
    if event.event is not None:
        parts.append(b"event: " + event.event.encode("utf-8", "replace") + b"\n")
    if event.id is not None:
        parts.append(b"id: " + event.id.encode("utf-8", "replace") + b"\n")
    if event.retry is not None:
        parts.append(b"retry: %d\n" % event.retry)
    if event.raw_data is not None:
        parts += _field_lines(b"data: ", event.raw_data)
    elif event.data is not None:
        # JSON escapes every control character, so the payload is always one line.
        parts.append(b"data: " + json_bytes(event.data) + b"\n")
    if not parts:
        return b""
    parts.append(b"\n")
    return b"".join(parts)


def encode_item(item: Any) -> bytes:
    """Encode what a stream yields: a ``ServerSentEvent``, or any JSON-able value as ``data``."""
    if isinstance(item, EncodedEvent):
        return item
    if isinstance(item, ServerSentEvent):
        return encode_event(item)
    return b"data: " + json_bytes(item) + b"\n\n"
