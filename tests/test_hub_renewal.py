"""The hub renews its channel-layer memberships without holding up joins.

Layers forget a membership after ``group_expiry``, so the hub re-adds its channel to every group
it holds, periodically. That pass once held the hub's lock from the first group to the last:
with 20,000 groups on Redis it took 13.6 s, and a page that joined a new group meanwhile waited
11 s for its first event. Here the pass runs against a real ``RedisChannelLayer``, and a join
made while it runs must be done before the pass is.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]

from django_sse.live import hub as hub_module
from django_sse.live.delivery import EventKey, PublishedEvent
from django_sse.live.hub import Hub
from tests.waiting import until_async as until

GROUPS = 1000


class RecordingLayer(RedisChannelLayer):  # type: ignore[misc]
    """The real layer, recording every membership it is asked to add."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.adds: list[str] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.adds.append(group)
        await super().group_add(group, channel)


class Member:
    def push(self, delivery: PublishedEvent) -> bool:
        return True

    def end(self, error: Exception | None = None) -> None:
        pass

    def reset(self, reason: str, position: EventKey) -> bool:
        return True


# Polled often: the join below has to land while a renewal pass is still running.
FAST = 0.001


async def test_a_join_completes_while_the_renewal_of_many_groups_runs(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "MAX_RENEW_INTERVAL", 0.5)
    layer = RecordingLayer(hosts=[redis_url], prefix="t" + uuid.uuid4().hex[:8])
    hub = Hub(layer)
    members = [(f"renew.g{n}", Member()) for n in range(GROUPS)]
    late = ("renew.new", Member())
    try:
        await asyncio.gather(*(hub.join(group, member) for group, member in members))
        # A pass may have begun while they joined: wait for the next one to begin.
        await until(lambda: hub.renewals >= 1, interval=FAST)
        passes, base = hub.renewals, len(layer.adds)
        await until(lambda: len(layer.adds) > base, interval=FAST)
        renewed_before_join = len(layer.adds) - base
        await hub.join(*late)
        renewed_at_join = len(layer.adds) - base - 1  # the new group's own add not counted
        await until(lambda: hub.renewals > passes, interval=FAST)
        print(
            f"\n{GROUPS} groups: a join made {renewed_before_join} renewals into the pass was "
            f"done {renewed_at_join} renewals into it"
        )
        # Done while the pass was still running, not after it (was: after all GROUPS renewals).
        assert renewed_at_join < GROUPS
        assert hub.groups()["renew.new"] == 1
    finally:
        for group, member in [*members, late]:
            hub.leave(group, member)
        await until(lambda: hub.stats()["tasks"] == 0, interval=FAST)
        await layer.flush()
