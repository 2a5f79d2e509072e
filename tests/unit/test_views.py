"""SubscriptionView: refusals are real 401/403/400 responses, decided before streaming starts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient

from django_sse.live.subscription import Subscription

pytestmark = [pytest.mark.urls("tests.support.urls"), pytest.mark.django_db(transaction=True)]


async def opened(client: AsyncClient, path: str) -> Subscription:
    response = await client.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    subscription = response._source  # type: ignore[attr-defined]
    assert isinstance(subscription, Subscription)
    await subscription.close()
    return subscription


async def test_login_required_answers_401_to_anonymous_users() -> None:
    client = AsyncClient()
    assert (await client.get("/test/live/login/item")).status_code == 401
    user = await User.objects.acreate_user("ann", password="x")
    await client.aforce_login(user)
    assert (await opened(client, "/test/live/login/item")).group == "items.item"


async def test_permission_required_answers_403_without_the_permission() -> None:
    client = AsyncClient()
    assert (await client.get("/test/live/perm")).status_code == 401
    user = await User.objects.acreate_user("bob", password="x")
    await client.aforce_login(user)
    assert (await client.get("/test/live/perm")).status_code == 403
    permission = await Permission.objects.aget(codename="view_item")
    await user.user_permissions.aadd(permission)
    client = AsyncClient()  # a new request re-reads the user and its permissions
    await client.aforce_login(user)
    await opened(client, "/test/live/perm")


async def test_an_ownership_check_answers_403_when_it_says_no() -> None:
    client = AsyncClient()
    assert (await client.get("/test/live/even/3")).status_code == 403
    assert (await opened(client, "/test/live/even/4")).group == "items.item.4"


@pytest.mark.parametrize("name", ["bad%20name", "a:b", "%C3%A9", "x" * 120])
async def test_group_names_from_the_url_are_validated(name: str) -> None:
    response = await AsyncClient().get(f"/test/live/open/{name}")
    assert response.status_code == 400


async def test_the_last_event_id_header_reaches_the_subscription() -> None:
    response = await AsyncClient().get("/test/live/open/abc", headers={"Last-Event-ID": "1-2"})
    subscription = response._source  # type: ignore[attr-defined]
    assert subscription.last_event_id == "1-2"
    await subscription.close()
