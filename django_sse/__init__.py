"""Server-Sent Events for Django."""

from .events import ServerSentEvent
from .last_event_id import get_last_event_id
from .live.publish import publish, publish_sync
from .live.subscription import latest_event_id, latest_event_id_sync, subscribe
from .response import EventSourceResponse

# The one place the version is written: pyproject.toml reads it from here when building.
__version__ = "0.1.0"

__all__ = [
    "EventSourceResponse",
    "ServerSentEvent",
    "get_last_event_id",
    "latest_event_id",
    "latest_event_id_sync",
    "publish",
    "publish_sync",
    "subscribe",
]
