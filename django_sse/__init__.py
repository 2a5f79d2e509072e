"""Server-Sent Events for Django."""

from .events import ServerSentEvent
from .last_event_id import get_last_event_id
from .response import EventSourceResponse

__all__ = [
    "EventSourceResponse",
    "ServerSentEvent",
    "get_last_event_id",
]
