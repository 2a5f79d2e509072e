"""``presence_changed``: sent once ``presence(group)`` shows a change, on the in-memory layer."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from django_sse import subscribe
from django_sse.live.presence import presence, presence_changed
from tests.support.waiting import until_async as until

_names = itertools.count()


@pytest.fixture
def group(settings: Any) -> str:
    settings.DJANGO_SSE = {"PRESENCE": True}
    return f"test-presence-changed.g{next(_names)}"


async def test_each_change_is_sent_with_presence_already_showing_it(group: str) -> None:
    seen: list[tuple[str, int]] = []

    async def receiver(sender: Any, group: str, **kwargs: Any) -> None:
        seen.append((group, (await presence(group)).count))

    presence_changed.connect(receiver)
    try:
        subscriptions = [subscribe(group) for _ in range(3)]
        await asyncio.gather(*(s.wait(0.001) for s in subscriptions))
        await until(lambda: (group, 3) in seen)
        # A burst of joins is sent at most once per join, and never before presence shows it.
        assert 1 <= len(seen) <= 3
        assert seen[-1] == (group, 3)
        seen.clear()
        await subscriptions.pop().aclose()
        await until(lambda: seen == [(group, 2)])
        for subscription in subscriptions:
            await subscription.aclose()
        await until(lambda: seen[-1:] == [(group, 0)])
    finally:
        presence_changed.disconnect(receiver)


async def test_a_failing_receiver_stops_neither_the_others_nor_presence(group: str) -> None:
    calls: list[str] = []
    failed: list[str] = []

    async def failing(sender: Any, group: str, **kwargs: Any) -> None:
        failed.append(group)
        raise RuntimeError("receiver failed")

    def plain(sender: Any, group: str, **kwargs: Any) -> None:  # a sync receiver works too
        calls.append(group)

    presence_changed.connect(failing)
    presence_changed.connect(plain)
    try:
        subscription = subscribe(group)
        await subscription.wait(0.001)
        await until(lambda: calls == [group])
        assert failed == [group]
        assert (await presence(group)).count == 1
        await subscription.aclose()
        await until(lambda: calls == [group, group])
        assert failed == [group, group]
    finally:
        presence_changed.disconnect(failing)
        presence_changed.disconnect(plain)


async def test_a_change_while_the_receivers_run_is_sent_after_them(group: str) -> None:
    # The leave comes while the join's announcement is still running (as a sync receiver's
    # thread lets it): it used to be taken for announced, and never sent.
    counts: list[int] = []
    release = asyncio.Event()

    async def slow(sender: Any, group: str, **kwargs: Any) -> None:
        counts.append((await presence(group)).count)
        if len(counts) == 1:
            await release.wait()

    presence_changed.connect(slow)
    try:
        subscription = subscribe(group)
        await subscription.wait(0.001)
        await until(lambda: counts == [1])
        await subscription.aclose()
        release.set()
        await until(lambda: counts == [1, 0])
    finally:
        presence_changed.disconnect(slow)
