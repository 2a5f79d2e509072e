"""The hub on a channel layer that fails, and subscriptions that reach their byte budget.

A layer can lose this process's messages without ``receive()`` ever raising (the Redis pubsub
layer reconnects and resubscribes by itself). The hub's heartbeat notices: a heartbeat that
cannot be sent, one that is lost, or silence ends every local subscriber, so that its client
reconnects and replays. tests/scenarios/test_redis_restart.py shows the same against a real Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer  # type: ignore[import-untyped]
from django.test import override_settings

from django_sse import publish, subscribe
from django_sse.live import heartbeat
from django_sse.live.delivery import EventKey, PublishedEvent
from django_sse.live.heartbeat import HEARTBEAT_TYPE, LayerFailure
from django_sse.live.hub import Hub, get_hub
from tests.support.waiting import until_async as until

_names = itertools.count()


class FlakyLayer:
    """An in-memory layer (not an ``InMemoryChannelLayer``, so the hub watches it) that can be
    told to lose heartbeats silently or to fail every send."""

    extensions = ["groups"]

    def __init__(self) -> None:
        self.inner = InMemoryChannelLayer()
        self.lose_heartbeats = 0
        self.broken: Exception | None = None
        self.refuse_groups: Exception | None = None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if self.broken is not None:
            raise self.broken
        if message.get("type") == HEARTBEAT_TYPE and self.lose_heartbeats:
            self.lose_heartbeats -= 1
            return
        await self.inner.send(channel, message)

    async def group_add(self, group: str, channel: str) -> None:
        if self.refuse_groups is not None:
            raise self.refuse_groups
        await self.inner.group_add(group, channel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Recorder:
    def __init__(self) -> None:
        self.ended: list[Exception | None] = []

    def push(self, delivery: PublishedEvent) -> bool:
        return True

    def end(self, error: Exception | None = None) -> None:
        self.ended.append(error)

    def reset(self, reason: str, position: EventKey) -> bool:
        return True


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_INTERVAL", 0.02)


async def test_a_healthy_layer_keeps_its_subscribers() -> None:
    hub = Hub(FlakyLayer())
    subscriber = Recorder()
    await hub.join("g", subscriber)
    await until(lambda: hub.received >= 15)  # fifteen heartbeats, however long they take
    assert subscriber.ended == []
    assert hub.stats()["tasks"] == 3  # receive, watch, renew
    hub.leave("g", subscriber)
    await until(lambda: hub.stats()["tasks"] == 0)
    assert hub.channels == 0


async def test_a_lost_heartbeat_ends_the_subscribers_and_the_next_join_starts_over() -> None:
    layer = FlakyLayer()
    hub = Hub(layer)
    subscribers = [Recorder(), Recorder()]
    for subscriber in subscribers:
        await hub.join("g", subscriber)
    first_channel = hub.channel
    layer.lose_heartbeats = 1
    await until(lambda: all(s.ended for s in subscribers))
    assert all(isinstance(s.ended[0], LayerFailure) for s in subscribers)
    assert hub.groups() == {} and hub.channel is None

    again = Recorder()
    await hub.join("g", again)
    assert hub.channel is not None and hub.channel != first_channel
    heard = hub.received
    await until(lambda: hub.received >= heard + 10)  # ten heartbeats on the new channel
    assert again.ended == []
    hub.leave("g", again)


async def test_a_layer_that_cannot_send_ends_the_subscribers_with_its_error() -> None:
    layer = FlakyLayer()
    hub = Hub(layer)
    subscriber = Recorder()
    await hub.join("g", subscriber)
    layer.broken = ConnectionError("Connection closed by server.")
    await until(lambda: bool(subscriber.ended))
    assert subscriber.ended == [layer.broken]
    # Leaving the abandoned channel's groups is attempted in the background, and may fail.
    await until(lambda: hub.stats()["tasks"] == 0)


async def test_a_silent_layer_ends_the_subscribers() -> None:
    layer = FlakyLayer()
    hub = Hub(layer)
    subscriber = Recorder()
    await hub.join("g", subscriber)
    layer.lose_heartbeats = 10**6  # nothing comes back, and there is no gap to notice
    await until(lambda: bool(subscriber.ended))
    assert isinstance(subscriber.ended[0], LayerFailure)


@override_settings(DJANGO_SSE={"SUBSCRIBER_MAX_BYTES": 1000})
async def test_a_subscription_ends_after_its_byte_budget_at_an_event_boundary() -> None:
    group = f"test-budget.g{next(_names)}"
    subscription = subscribe(group)
    await subscription.open()
    received = b""
    async with asyncio.timeout(10):
        for i in range(30):
            await publish(group, {"n": i, "pad": "x" * 50})
            await subscription.wait(None)
            if subscription.has_data:
                received += subscription.take()
            if subscription.finished:
                break
    assert subscription.exhausted and subscription.error is None
    # Stopped with the event that crossed 1,000 bytes, and left the group.
    assert 1000 <= len(received) < 1000 + 100
    assert received.endswith(b"\n\n")
    assert group not in get_hub().groups()
    await subscription.close()


async def test_a_join_that_fails_leaves_no_channel_or_task_behind() -> None:
    layer = FlakyLayer()
    hub = Hub(layer)
    layer.refuse_groups = ConnectionError("Error 111 connecting")
    with pytest.raises(ConnectionError):
        await hub.join("g", Recorder())
    await until(lambda: hub.stats()["tasks"] == 0)
    assert hub.channel is None and hub.groups() == {}
    layer.refuse_groups = None
    subscriber = Recorder()
    await hub.join("g", subscriber)  # the broker is back: the next join works
    assert hub.channel is not None
    hub.leave("g", subscriber)
