"""The live page's "N viewing" badge: the count of streams of ``items.item``, kept live.

Whenever the group's subscribers change, ``presence_changed`` is sent (``DJANGO_SSE["PRESENCE"]``
is on in the demo's settings) and this receiver publishes the new count to the group itself, as
a ``viewing`` event: the page swaps it into its badge (``data-sse-swap="viewing"``). The opening
stream gets the event too, so the page renders no count of its own.
"""

from __future__ import annotations

from typing import Any

from django_sse import ServerSentEvent, publish
from django_sse.live.presence import presence

GROUP = "items.item"
VIEWING_EVENT = "viewing"


async def publish_viewers(sender: Any, group: str, **kwargs: Any) -> None:
    if group != GROUP:
        return
    found = await presence(group)
    await publish(group, ServerSentEvent(event=VIEWING_EVENT, data=found.count))
