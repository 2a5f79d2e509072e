"""``publish(group, event)``: one event to every subscriber of a group, in every process.

The event is logged for replay first (which assigns its id), then sent through the channel
layer. Logging first is what makes replay gap-free: a subscriber that joined too late for the
live message finds the event in the log. The event is encoded here, once; processes receive
wire bytes and never encode it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from channels.layers import InMemoryChannelLayer  # type: ignore[import-untyped]

from .. import metrics
from ..encoding import encode_event, json_bytes, split_lines
from ..events import ServerSentEvent
from .delivery import PublishedEvent
from .groups import layer_group
from .hub import current_layer, listening_loops
from .loop_thread import LoopThread
from .replay import Record, get_log
from .serving import process_role


def make_record(event: Any) -> Record:
    """Encode ``event`` (a ``ServerSentEvent`` or any JSON-able value) without its id."""
    if not isinstance(event, ServerSentEvent):
        event = ServerSentEvent(data=event)
    if event.id is not None:
        raise ValueError(
            "publish() assigns event ids itself (monotonic per group, used for replay); "
            "leave ServerSentEvent.id unset."
        )
    # The payload travels and is stored separately only when the body cannot give it back
    # as its one data line (see delivery.py): a raw_data of several lines.
    payload: bytes | None = None
    is_json: bool | None = None
    if event.raw_data is not None:
        is_json = False
        if len(split_lines(event.raw_data)) > 1:
            payload = event.raw_data.encode("utf-8", "replace")
    elif event.data is not None:
        is_json = True
        # JSON is one line, so it can go out as raw data: the value is serialized only once.
        event = event.model_copy(update={"data": None, "raw_data": json_bytes(event.data).decode()})
    encoded = encode_event(event)
    if not encoded:
        raise ValueError("Nothing to publish: the event has no field set.")
    # Leave the blank line off: the id is appended once the log has assigned it.
    return Record(body=encoded[:-1], event=event.event, payload=payload, is_json=is_json)


async def publish(group: str, event: Any) -> str:
    """Send ``event`` to ``group``'s subscribers everywhere; returns the event's id.

    ``event`` is a ``ServerSentEvent`` (without ``id``) or any value ``ServerSentEvent.data``
    accepts. Delivery through the channel layer is at most once; a client that missed an event
    gets it from the replay log when it reconnects with its last id.
    """
    process_role.warn_if_unheard()  # a shell on the in-memory layer reaches nobody: say so
    name = layer_group(group)
    record = make_record(event)
    delivery: PublishedEvent = await get_log().append(group, record)
    layer = current_layer()
    if isinstance(layer, InMemoryChannelLayer):
        await _send_in_memory(layer, name, delivery.message())
    else:
        await layer.group_send(name, delivery.message())
    metrics.record().published(group)
    return delivery.id


async def _send_in_memory(layer: InMemoryChannelLayer, name: str, message: Any) -> None:
    # The in-memory layer's queues are asyncio queues: not thread-safe, and they only wake the
    # loop that reads them when written from that loop. A publish from a thread with a loop of
    # its own (a worker thread calling publish_sync) is therefore sent from the hub's loop.
    loops = listening_loops()
    if loops and asyncio.get_running_loop() not in loops:
        future = asyncio.run_coroutine_threadsafe(_group_send(layer, name, message), loops[0])
        await asyncio.wrap_future(future)
    else:
        await _group_send(layer, name, message)


async def _group_send(layer: InMemoryChannelLayer, name: str, message: Any) -> None:
    await layer.group_send(name, message)
    # The in-memory layer drops messages once a channel holds ``capacity`` (100) of them, and
    # its group_send never yields: give this loop's hub a turn to drain its channel, so that a
    # burst published in a tight loop is not cut short.
    await asyncio.sleep(0)


# Sync publishing of this process, on one loop that keeps its broker connections (see
# loop_thread.py): a new loop per call opened two Redis connections per publish.
sync_publishing = LoopThread("django-sse-publish")


def publish_sync(group: str, event: Any) -> str:
    """``publish`` for sync code: views, signal handlers, management commands, shells, tasks."""
    return sync_publishing.run(publish(group, event))


async def publish_many(events: Iterable[tuple[str, Any]]) -> list[str]:
    """``publish`` each ``(group, event)`` in order."""
    return [await publish(group, event) for group, event in events]


def publish_many_sync(events: Iterable[tuple[str, Any]]) -> list[str]:
    """``publish_many`` for sync code: one trip to the publishing loop for the whole batch."""
    return sync_publishing.run(publish_many(list(events)))
