"""``subscribe([...])`` in one process: routing, resume per group, resets per group, limits."""

from __future__ import annotations

import asyncio
import itertools
import json
import re

import pytest

from django_sse import publish, subscribe
from django_sse.live.cursor import MAX_GROUPS, decode, group_hash
from django_sse.live.hub import get_hub
from django_sse.live.subscription import Subscription
from tests.support.waiting import until_async as until

_names = itertools.count()
ID = re.compile(rb"^id: (.*)$", re.M)
DATA = re.compile(rb"^data: (.*)$", re.M)
EVENT = re.compile(rb"^event: (.*)$", re.M)


@pytest.fixture
def groups() -> list[str]:
    n = next(_names)
    return [f"test-multi.g{n}.a", f"test-multi.g{n}.b", f"test-multi.g{n}.c"]


def parse(chunk: bytes) -> tuple[str, str, object]:
    """(event type, id, data) of one encoded event."""
    event_id = ID.search(chunk)
    data = DATA.search(chunk)
    kind = EVENT.search(chunk)
    assert event_id is not None and data is not None
    return (
        kind[1].decode() if kind else "message",
        event_id[1].decode(),
        json.loads(data[1]),
    )


async def collect(subscription: Subscription, count: int) -> list[tuple[str, str, object]]:
    received: list[tuple[str, str, object]] = []
    async with asyncio.timeout(20):
        async for chunk in subscription:
            received.append(parse(chunk))
            if len(received) == count:
                break
    return received


async def test_events_of_every_group_arrive_on_one_subscription_with_their_feed_index(
    groups: list[str],
) -> None:
    subscription = subscribe(groups)
    await subscription.wait(0.001)
    hub = get_hub()
    assert all(hub.groups()[group] == 1 for group in groups)  # one membership per group
    reader = asyncio.create_task(collect(subscription, 6))
    for n in range(2):
        for index, group in enumerate(groups):
            await publish(group, {"g": index, "n": n})
    received = await reader
    assert [(data, event_id.split(":")[0]) for _, event_id, data in received] == [
        ({"g": g, "n": n}, str(g)) for n in range(2) for g in range(3)
    ]
    cursor = decode(received[-1][1])
    assert cursor is not None and {group_hash(g) for g in groups} <= cursor.keys()
    await subscription.close()
    await until(lambda: not any(group in hub.groups() for group in groups))


async def test_a_reconnect_with_the_last_id_replays_each_group_exactly_once(
    groups: list[str],
) -> None:
    first = subscribe(groups)
    await first.wait(0.001)
    reader = asyncio.create_task(collect(first, 3))
    for index, group in enumerate(groups):
        await publish(group, {"g": index, "n": 0})
    seen = await reader
    await first.close()
    # Missed while away: two events of a, none of b, one of c.
    await publish(groups[0], {"g": 0, "n": 1})
    await publish(groups[2], {"g": 2, "n": 1})
    await publish(groups[0], {"g": 0, "n": 2})
    second = subscribe(groups, last_event_id=seen[-1][1])
    missed = await collect(second, 3)
    assert [data for _, _, data in missed] == [
        {"g": 0, "n": 1},
        {"g": 0, "n": 2},
        {"g": 2, "n": 1},
    ] or [data for _, _, data in missed] == [
        {"g": 2, "n": 1},
        {"g": 0, "n": 1},
        {"g": 0, "n": 2},
    ]
    live = asyncio.create_task(collect(second, 1))
    await publish(groups[1], {"g": 1, "n": 1})
    assert [data for _, _, data in await live] == [{"g": 1, "n": 1}]
    await second.close()


async def test_an_id_positions_only_the_groups_the_subscription_names(groups: list[str]) -> None:
    first = subscribe(groups)
    await first.wait(0.001)
    reader = asyncio.create_task(collect(first, 1))
    await publish(groups[0], {"g": 0})
    (_, last_id, _) = (await reader)[0]
    await first.close()
    await publish(groups[0], {"g": 0, "n": 1})
    await publish(groups[1], {"g": 1, "n": 1})
    # The id knows groups a, b and c; this subscription names only b: nothing of a arrives.
    only_b = subscribe([groups[1]], last_event_id=last_id)
    assert [data for _, _, data in await collect(only_b, 1)] == [{"g": 1, "n": 1}]
    await only_b.close()


@pytest.mark.parametrize("bad", ["garbage", "0:1pAAAA", "0:1sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""])
async def test_an_id_that_does_not_verify_resets_every_group_then_goes_live(
    groups: list[str], bad: str
) -> None:
    await publish(groups[0], {"g": 0})
    subscription = subscribe(groups, last_event_id=bad or "x")
    resets = await collect(subscription, 3)
    assert sorted(kind for kind, _, _ in resets) == ["reset"] * 3
    assert sorted(event_id.split(":")[0] for _, event_id, _ in resets) == ["0", "1", "2"]
    assert {data["reason"] for _, _, data in resets} == {"unknown"}  # type: ignore[index]
    live = asyncio.create_task(collect(subscription, 1))
    await publish(groups[2], {"g": 2})
    assert [data for _, _, data in await live] == [{"g": 2}]
    await subscription.close()


async def test_a_group_the_log_no_longer_covers_gets_its_own_reset(
    groups: list[str], settings: object
) -> None:
    first = subscribe(groups)
    await first.wait(0.001)
    reader = asyncio.create_task(collect(first, 2))
    await publish(groups[0], {"g": 0})
    await publish(groups[1], {"g": 1})
    last_id = (await reader)[-1][1]
    await first.close()
    # Group a moves on by more than the window (1000 by default); b by one event.
    for n in range(1005):
        await publish(groups[0], {"n": n})
    await publish(groups[1], {"g": 1, "n": 1})
    second = subscribe(groups, last_event_id=last_id)
    got = await collect(second, 2)
    kinds = {event_id.split(":")[0]: (kind, data) for kind, event_id, data in got}
    assert kinds["0"][0] == "reset" and kinds["0"][1]["reason"] == "expired"  # type: ignore[index]
    assert kinds["1"] == ("message", {"g": 1, "n": 1})
    await second.close()


def test_names_are_checked_at_once() -> None:
    with pytest.raises(ValueError):
        subscribe([f"g{n}" for n in range(MAX_GROUPS + 1)])
    with pytest.raises(ValueError):
        subscribe([])
    with pytest.raises(ValueError):
        subscribe(["a", "a"])
    with pytest.raises(ValueError):
        subscribe(["a", "b c"])
    assert len(subscribe([f"g{n}" for n in range(MAX_GROUPS)]).groups) == MAX_GROUPS  # type: ignore[attr-defined]


async def test_latest_event_id_of_several_groups_resumes_each_of_them(groups: list[str]) -> None:
    from django_sse import latest_event_id

    await publish(groups[0], {"g": 0, "n": 0})
    rendered = await latest_event_id(groups)
    assert rendered is not None and rendered.startswith("0:1s")  # sealed: a page shows it
    await publish(groups[1], {"g": 1, "n": 0})
    await publish(groups[0], {"g": 0, "n": 1})
    subscription = subscribe(groups, last_event_id=rendered)
    got = [data for _, _, data in await collect(subscription, 2)]
    assert sorted(got, key=str) == sorted([{"g": 1, "n": 0}, {"g": 0, "n": 1}], key=str)
    await subscription.close()


async def test_with_replay_off_every_group_starts_live_without_a_reset(groups: list[str]) -> None:
    from django.test import override_settings

    with override_settings(DJANGO_SSE={"REPLAY_BACKEND": None}):
        await publish(groups[0], {"g": 0, "n": 0})
        subscription = subscribe(groups)
        await subscription.wait(0.001)
        reader = asyncio.create_task(collect(subscription, 2))
        await publish(groups[1], {"g": 1})
        await publish(groups[0], {"g": 0, "n": 1})
        got = await reader
        assert [(kind, data) for kind, _, data in got] == [
            ("message", {"g": 1}),
            ("message", {"g": 0, "n": 1}),
        ]
        await subscription.close()


async def test_a_reconnect_that_missed_nothing_does_not_read_the_log(
    groups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_sse.live.replay import get_log

    keep = subscribe(groups[0])  # keeps the group joined: the hub knows its position
    await keep.wait(0.001)
    last_id = await publish(groups[0], {"n": 0})
    await until(lambda: get_hub().position(groups[0]) is not None)
    reads: list[str] = []
    log = get_log()
    original = log.read

    async def counted(group: str, *args: object, **kwargs: object) -> object:
        reads.append(group)
        return await original(group, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(log, "read", counted)
    resumed = subscribe(groups[0], last_event_id=last_id)
    await resumed.wait(0.001)
    assert reads == []  # the hub had dispatched nothing after it
    reader = asyncio.create_task(collect(resumed, 1))
    await publish(groups[0], {"n": 1})
    assert [data for _, _, data in await reader] == [{"n": 1}]
    for subscription in (keep, resumed):
        await subscription.close()
