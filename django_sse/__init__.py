"""Server-Sent Events for Django."""

from typing import TYPE_CHECKING, Any

from .events import ServerSentEvent
from .last_event_id import get_last_event_id
from .response import EventSourceResponse

if TYPE_CHECKING:
    from .live.publish import publish, publish_sync
    from .live.subscription import latest_event_id, latest_event_id_sync, subscribe

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

# The pub/sub layer is imported when one of its names is first used, not with the package: the
# response and the wire format must stay importable without it (tests/unit/test_layers.py).
_LIVE = {
    "publish": "publish",
    "publish_sync": "publish",
    "subscribe": "subscription",
    "latest_event_id": "subscription",
    "latest_event_id_sync": "subscription",
}


def __getattr__(name: str) -> Any:
    module = _LIVE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".live.{module}", __name__), name)
    globals()[name] = value
    return value
