"""Combined feeds through Django's async test client: resolution, refusals, routing, filters.

The same behaviour against real Daphne processes and Redis is in test_multi_servers.py.
"""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from django_sse import publish
from django_sse.live.cursor import decode, group_hash
from django_sse.live.hub import get_hub
from django_sse.live.multi import MultiSubscription
from django_sse.testing import read_events
from tests.support.feed_views import authorizations

pytestmark = [pytest.mark.urls("tests.support.urls"), pytest.mark.django_db(transaction=True)]

_names = itertools.count()


@pytest.fixture
def name() -> str:
    return f"f{next(_names)}"


def combined(first: str, *others: str) -> str:
    return first + "?" + "&".join("feed=" + quote(other, safe="") for other in others)


async def test_a_view_with_two_group_templates_streams_both_with_multi_ids(name: str) -> None:
    response = await AsyncClient().get(f"/test/feeds/pair/{name}")
    assert response.status_code == 200
    await publish(f"fd.{name}.a", {"n": 1})
    await publish(f"fd.{name}.b", {"n": 2})
    events = await read_events(response, 2)
    assert [(e.json(), e.id.split(":")[0]) for e in events] == [({"n": 1}, "0"), ({"n": 2}, "0")]
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


async def test_feeds_share_one_stream_and_each_event_names_its_feeds(name: str) -> None:
    url = combined(
        f"/test/feeds/pair/{name}",  # feed 0: a and b
        f"/test/feeds/one/{name}/b",  # feed 1: b again
        f"/test/feeds/one/{name}/c",  # feed 2: c
    )
    response = await AsyncClient().get(url)
    assert response.status_code == 200, response.content
    subscription = response._source  # type: ignore[attr-defined]
    assert isinstance(subscription, MultiSubscription)
    assert subscription.groups == [f"fd.{name}.a", f"fd.{name}.b", f"fd.{name}.c"]
    await subscription.open()
    assert get_hub().groups()[f"fd.{name}.b"] == 1  # named by two feeds, joined once
    for part in "abc":
        await publish(f"fd.{name}.{part}", part)
    events = await read_events(response, 3)
    assert [(e.json(), e.id.split(":")[0]) for e in events] == [
        ("a", "0"),
        ("b", "0,1"),
        ("c", "2"),
    ]
    positions = decode(events[-1].id)
    assert positions is not None
    assert set(positions) == {group_hash(f"fd.{name}.{part}") for part in "abc"}
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


async def test_each_feed_keeps_its_own_filter_and_the_cursor_is_sealed(name: str) -> None:
    url = combined(f"/test/feeds/one/{name}/a", f"/test/feeds/kept/{name}/a")
    response = await AsyncClient().get(url)
    await publish(f"fd.{name}.a", {"keep": False, "n": 1})
    await publish(f"fd.{name}.a", {"keep": True, "n": 2})
    events = await read_events(response, 2)
    assert [(e.json()["n"], e.id.split(":")[0]) for e in events] == [(1, "0"), (2, "0,1")]
    assert all(e.id.split(":")[1].startswith("1s") for e in events)  # counts stay hidden
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("feed", "status"),
    [("denied", 403), ("login", 401), ("/test/health", 400), ("/nowhere", 400), ("//x/y", 400)],
)
async def test_one_refused_or_unknown_feed_refuses_the_whole_stream(
    name: str, feed: str, status: int
) -> None:
    other = feed if feed.startswith("/") else f"/test/feeds/{feed}/{name}"
    response = await AsyncClient().get(combined(f"/test/feeds/one/{name}/a", other))
    assert response.status_code == status
    assert f"fd.{name}.a" not in get_hub().groups()  # refused before joining anything


async def test_a_logged_in_user_gets_the_login_feed(name: str) -> None:
    client = AsyncClient()
    await client.aforce_login(await User.objects.acreate_user(name, password="x"))
    response = await client.get(combined(f"/test/feeds/one/{name}/a", f"/test/feeds/login/{name}"))
    assert response.status_code == 200
    await response.streaming_content.aclose()  # type: ignore[attr-defined]


async def test_more_than_sixteen_feeds_is_a_bad_request(name: str) -> None:
    pairs = [f"/test/feeds/pair/{name}{n}" for n in range(16)]  # 16 feeds, 32 groups: fine
    response = await AsyncClient().get(combined(*pairs))
    assert response.status_code == 200
    assert len(response._source.groups) == 32  # type: ignore[attr-defined]
    await response.streaming_content.aclose()  # type: ignore[attr-defined]
    pairs.append(f"/test/feeds/one/{name}/z")
    assert (await AsyncClient().get(combined(*pairs))).status_code == 400


async def test_a_feeds_own_last_event_id_positions_its_group(name: str) -> None:
    first = await publish(f"fd.{name}.c", "c1")
    await publish(f"fd.{name}.c", "c2")
    url = combined(f"/test/feeds/one/{name}/a", f"/test/feeds/one/{name}/c?lastEventId={first}")
    response = await AsyncClient().get(url)
    events = await read_events(response, 1)
    assert (events[0].json(), events[0].id.split(":")[0]) == ("c2", "1")
    # The connection's own id wins over the feed's: a reconnect resumes after what it got.
    again = await AsyncClient().get(url, headers={"Last-Event-ID": events[0].id})
    await publish(f"fd.{name}.a", "a1")
    assert [e.json() for e in await read_events(again, 1)] == ["a1"]
    for stream in (response, again):
        await stream.streaming_content.aclose()  # type: ignore[attr-defined]


async def test_a_lone_feed_resumes_from_a_combined_id_authorized_once(name: str) -> None:
    # A tab that inherits the shared connection with only its own feed left (test_tabs.py)
    # resumes that feed alone from the combined id it last relayed.
    lone = f"/test/feeds/counted/{name}/c"
    shared = await AsyncClient().get(combined(f"/test/feeds/one/{name}/a", lone))
    await publish(f"fd.{name}.a", "a1")
    await publish(f"fd.{name}.c", "c1")
    last = (await read_events(shared, 2))[-1].id
    await shared.streaming_content.aclose()  # type: ignore[attr-defined]
    await publish(f"fd.{name}.a", "a2")
    await publish(f"fd.{name}.c", "c2")  # missed: replayed, with nothing of a

    authorizations.clear()
    for resume in (
        {"path": f"{lone}?lastEventId={quote(last)}"},
        {"headers": {"Last-Event-ID": last}, "path": lone},
    ):
        response = await AsyncClient().get(**resume)
        assert response.status_code == 200
        (event,) = await read_events(response, 1)
        assert (event.event, event.json(), event.id.split(":")[0]) == ("message", "c2", "0")
        await response.streaming_content.aclose()  # type: ignore[attr-defined]
    assert authorizations == {f"fd.{name}.c": 2}  # once per request
