"""The demo's per-user notes: SubscriptionView with login_required, check and event_filter.

In-process, as the "Testing your streams" page shows: Django's AsyncClient and read_events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from demo_project.items.models import Note
from django_sse.access import end_user_streams
from django_sse.testing import read_events

pytestmark = [pytest.mark.urls("tests.support.urls"), pytest.mark.django_db(transaction=True)]


async def signed_in(name: str) -> tuple[AsyncClient, User]:
    user = await User.objects.acreate_user(name, password="x")
    client = AsyncClient()
    await client.aforce_login(user)
    return client, user


async def ended(response: Any, user: User) -> None:
    """End ``user``'s streams, as a logout does, and read ``response`` to its end.

    Ended this way, a stream leaves nothing behind in the process (its hub membership and its
    share of the process's byte budget are released), unlike one closed from the outside.
    """
    await end_user_streams(user)
    async with asyncio.timeout(10):
        async for _ in response.streaming_content:
            pass


async def test_signed_out_visitors_get_no_stream_and_the_login_page() -> None:
    assert (await AsyncClient().get("/notes/live")).status_code == 401
    assert (await AsyncClient().get("/notes/1/live")).status_code == 401
    page = await AsyncClient().get("/notes/")
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/login/")


async def test_each_user_sees_only_their_own_notes_of_the_shared_group() -> None:
    alice, alice_user = await signed_in("alice")
    _, bob_user = await signed_in("bob")
    response = await alice.get("/notes/live")
    assert response.status_code == 200
    try:
        # Bob's note first: the group keeps its order, so had the filter let it through, it
        # would be the first event Alice reads.
        await Note.objects.acreate(owner=bob_user, text="bob's secret")
        mine = await Note.objects.acreate(owner=alice_user, text="alice's note")
        [event] = await read_events(response, 1, timeout=10)
        assert event.event == "created"
        assert event.json()["id"] == mine.pk
        assert event.json()["text"] == "alice's note"
    finally:
        await ended(response, alice_user)


async def test_a_note_stream_is_for_its_owner_only() -> None:
    alice, _ = await signed_in("alice")
    bob, bob_user = await signed_in("bob")
    note = await Note.objects.acreate(owner=bob_user, text="draft")
    assert (await alice.get(f"/notes/{note.pk}/live")).status_code == 403
    response = await bob.get(f"/notes/{note.pk}/live")
    assert response.status_code == 200
    try:
        note.text = "final"
        await note.asave()
        [event] = await read_events(response, 1, timeout=10)
        assert (event.event, event.json()["text"]) == ("updated", "final")
    finally:
        await ended(response, bob_user)


async def test_the_notes_page_lists_the_users_notes_and_connects_to_their_stream() -> None:
    alice, alice_user = await signed_in("alice")
    _, bob_user = await signed_in("bob")
    await Note.objects.acreate(owner=alice_user, text="alice's note")
    await Note.objects.acreate(owner=bob_user, text="bob's note")
    page = await alice.get("/notes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "alice&#x27;s note" in html
    assert "bob&#x27;s note" not in html
    assert '"url": "/notes/live' in html
