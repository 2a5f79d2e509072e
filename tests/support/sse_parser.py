"""A spec-exact event stream parser (WHATWG HTML 9.2.6), the yardstick for the encoder tests.

Unlike httpx-sse it splits lines at CRLF, LF and lone CR only, strips one BOM, ignores ids with
NUL and non-digit retries, dispatches nothing for blocks without data, and drops an unterminated
final event: exactly what a browser does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Event:
    type: str
    data: str
    last_event_id: str


@dataclass
class Parsed:
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""


_LINE = re.compile(r"(.*?)(?:\r\n|\r|\n)", re.S)


def parse(stream: bytes) -> Parsed:
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    result = Parsed()
    data: list[str] = []
    event_type = ""
    position = 0
    for match in _LINE.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        line = match.group(1)
        if line == "":
            if data:
                result.events.append(
                    Event(event_type or "message", "\n".join(data), result.last_event_id)
                )
            data = []
            event_type = ""
            continue
        if line.startswith(":"):
            result.comments.append(line[1:].removeprefix(" "))
            continue
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            if "\0" not in value:
                result.last_event_id = value
        elif name == "retry":
            if value and all("0" <= c <= "9" for c in value):
                result.retry = int(value)
    return result
