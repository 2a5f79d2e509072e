"""A URL value is one segment of a group name: ``x.{name}`` never reaches ``x.acc.rows``.

``<str:>`` (and ``<path:>``, and regexes) let a dot through, and a value with dots could name
any group below the view's prefix, one that another view protects with a login and a per-user
filter. The exact attack against a real Daphne, then hypothesis over URL values through Django's
ASGI handler.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_sse.live.groups import format_group, validate_group
from tests.conftest import StartServer
from tests.scenarios.test_access import create_users, log_in
from tests.support.raw_client import RawStream
from tests.unit.test_bad_input import call

PROTECTED = "x.acc.rows"  # /test/acc/mine: logged-in users, each sees only their own rows
ATTACKS = [
    "/test/live/open/acc.rows",
    "/test/live/open/acc%2Erows",
    "/test/live/open/acc%2erows",
    "/test/rel/stream/acc.rows",
    "/test/acc/two/acc.rows/x",  # x.two.acc.rows.x: not the protected group, but two segments
]


def test_format_group_keeps_each_value_one_segment() -> None:
    assert format_group("x.{name}", {"name": "rows"}) == "x.rows"
    assert format_group("items.item.{pk}", {"pk": 7}) == "items.item.7"
    assert format_group("docs.{path}", {"path": "a.b"}, dotted=["path"]) == "docs.a.b"
    for value in ["acc.rows", ".", "a.", ".a", ""]:
        with pytest.raises(ValueError):
            format_group("x.{name}", {"name": value})
    with pytest.raises(KeyError):
        format_group("x.{name}", {})


@pytest.mark.server
def test_a_dotted_url_value_never_streams_a_protected_group(
    start: StartServer, server_database: str
) -> None:
    server = start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "0.5"})
    alice = "alice-" + uuid.uuid4().hex[:6]
    create_users(server_database, alice)
    session = log_in(server, alice)

    async def scenario() -> None:
        owner = RawStream(server.url, "/test/acc/mine", {"Cookie": f"sessionid={session}"})
        assert await owner.open() == 200
        attackers = [RawStream(server.url, path, {"Connection": "close"}) for path in ATTACKS]
        for attacker in attackers:
            assert await attacker.open() in (400, 404), (attacker.path, attacker.head)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            groups = (await client.get("/test/live/hub")).json()["groups"]
            assert groups.get(PROTECTED) == 1  # alice alone
            assert not [name for name in groups if name.startswith(("x.two", "x.acc.rows."))]
            await client.get(
                "/test/acc/publish", params={"group": PROTECTED, "count": 3, "owners": alice}
            )
            # A view that declares a dotted kwarg still takes dots there.
            docs = RawStream(server.url, "/test/acc/docs/a.b", {"Connection": "close"})
            assert await docs.open() == 200
            assert (await client.get("/test/live/hub")).json()["groups"].get("x.docs.a.b") == 1
            await docs.close()
        await owner.read_events(3, 30)
        assert [json.loads(event.data)["n"] for event in owner.events()] == [0, 1, 2]
        for attacker in attackers:
            await attacker.read_to_end()
            assert b"text/event-stream" not in attacker.head.lower()
            assert attacker.events() == []
            await attacker.close()
        await owner.close()

    asyncio.run(scenario())
    assert "Traceback" not in server.log(), server.log()


# --- hypothesis through Django's ASGI handler ----------------------------------------------

# Dots, slashes and the characters of valid names, often; anything, sometimes.
segment_text = st.one_of(
    st.text(alphabet=st.sampled_from("ab1-_./%:é"), max_size=12),
    st.text(max_size=30),
)
fuzz = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def streamed(group: str) -> str | None:
    try:
        return validate_group(group)
    except ValueError:
        return None


@pytest.mark.django_db(transaction=True)
@fuzz
@given(a=segment_text, b=segment_text)
def test_each_url_value_is_one_segment(loop: asyncio.AbstractEventLoop, a: str, b: str) -> None:
    status, groups = loop.run_until_complete(call(f"/test/acc/two/{a}/{b}"))
    if not re.fullmatch("[^/]+", a) or not re.fullmatch("[^/]+", b):  # <str:>'s pattern
        assert status == 404 and groups == {}
        return
    group = None if "." in a + b else streamed(f"x.two.{a}.{b}")
    if group is None:
        assert status == 400 and groups == {}, (status, groups)
    else:
        assert status == 200 and groups == {group: 1}, (status, groups)


@pytest.mark.django_db(transaction=True)
@fuzz
@given(path=segment_text)
def test_a_declared_dotted_value_may_span_segments(
    loop: asyncio.AbstractEventLoop, path: str
) -> None:
    status, groups = loop.run_until_complete(call(f"/test/acc/docs/{path}"))
    if not re.fullmatch(".+", path):  # the <path:> converter's own pattern: no newline
        assert status == 404 and groups == {}
        return
    group = streamed(f"x.docs.{path}")
    if group is None:
        assert status == 400 and groups == {}, (status, groups)
    else:
        assert status == 200 and groups == {group: 1}, (status, groups)
