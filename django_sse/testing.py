"""Read an event stream in tests, as a browser would: ``await read_events(response, 2)``.

``read_events`` takes what Django's ``AsyncClient`` returns for a stream view (or an
``EventSourceResponse`` itself) and parses it with a spec-exact parser (WHATWG HTML 9.2.6):
lines end at CRLF, LF or lone CR, one BOM is skipped, ``id`` with NUL and non-digit ``retry``
are ignored, a block without ``data`` dispatches nothing, and an event counts only once its blank
line has arrived. The stream stays open, so a test can publish and read again; what a read
left over stays with the response for the next one.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventStreamParser", "ReceivedEvent", "read_events"]


@dataclass(frozen=True)
class ReceivedEvent:
    """One dispatched event, as ``EventSource`` hands it to a page."""

    data: str
    event: str = "message"
    id: str = ""  # the last event id at this event, as ``MessageEvent.lastEventId``
    retry: int | None = None  # the reconnection time last set by the stream, in ms

    def json(self) -> Any:
        """``data`` decoded as JSON (what ``ServerSentEvent(data=...)`` sent)."""
        return json.loads(self.data)


@dataclass
class EventStreamParser:
    """Incremental parser: ``feed`` bytes as they arrive, get the events they complete."""

    last_event_id: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    _buffer: str = ""
    _started: bool = False
    _pending_cr: bool = False
    _data: list[str] = field(default_factory=list)
    _has_data: bool = False
    _event: str = ""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )

    def feed(self, chunk: bytes) -> list[ReceivedEvent]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]  # the LF of a CRLF split between two chunks
        events: list[ReceivedEvent] = []
        buffer = self._buffer + text
        start = 0
        length = len(buffer)
        while True:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line = buffer[start:end]
            if buffer[end] == "\r":
                if end + 1 < length:
                    start = end + 2 if buffer[end + 1] == "\n" else end + 1
                else:
                    start = end + 1
                    self._pending_cr = True
            else:
                start = end + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> ReceivedEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value and all("0" <= c <= "9" for c in value):
                self.retry = int(value)
        return None

    def _dispatch(self) -> ReceivedEvent | None:
        event: ReceivedEvent | None = None
        if self._has_data:
            event = ReceivedEvent(
                data="\n".join(self._data),
                event=self._event or "message",
                id=self.last_event_id,
                retry=self.retry,
            )
        self._data = []
        self._has_data = False
        self._event = ""
        return event


@dataclass
class _Reading:
    content: AsyncIterator[bytes]
    parser: EventStreamParser = field(default_factory=EventStreamParser)
    # Events past the count asked for, for the next read.
    ready: list[ReceivedEvent] = field(default_factory=list)


_readings: weakref.WeakKeyDictionary[Any, _Reading] = weakref.WeakKeyDictionary()


async def read_events(
    response: Any,
    count: int,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109  (a bounded read is the point of the helper)
) -> list[ReceivedEvent]:
    """Read the next ``count`` events of a streaming ``response``.

    Raises ``TimeoutError`` when they have not all arrived within ``timeout`` seconds, and
    ``AssertionError`` when the stream ends first; both say what did arrive.
    """
    if not getattr(response, "streaming", False) or not getattr(response, "is_async", False):
        raise TypeError(f"read_events() needs an async streaming response, not {response!r}")
    reading = _readings.get(response)
    if reading is None:
        reading = _readings[response] = _Reading(response.streaming_content)
    parser, ready, content = reading.parser, reading.ready, reading.content
    try:
        async with asyncio.timeout(timeout):
            while len(ready) < count:
                try:
                    chunk = await anext(content)
                except StopAsyncIteration:
                    raise AssertionError(
                        f"the stream ended after {len(ready)} of {count} events: {ready!r}"
                    ) from None
                ready.extend(parser.feed(chunk))
    except TimeoutError:
        raise TimeoutError(
            f"{len(ready)} of {count} events within {timeout} s: {ready!r}; "
            f"comments {parser.comments!r}"
        ) from None
    events, ready[:] = ready[:count], ready[count:]
    return events
