"""SubscriptionView's hooks, in-process: sync ones may use the ORM, and the README example works.

A sync hook called on the event loop cannot touch the database (``SynchronousOnlyOperation``,
a 500): the view runs each in the request's thread, as Django runs sync views. The README's
Access-control example is executed from README.md itself (see tests/support/access_views.py), so the
documentation cannot drift from what works.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient

from django_sse.live.access import end_user_streams, user_group
from django_sse.live.delivery import PublishedEvent
from django_sse.live.hub import get_hub
from django_sse.live.subscription import Subscription
from tests.support.orders.models import Order
from tests.support.waiting import until_async as until

pytestmark = [pytest.mark.urls("tests.support.urls"), pytest.mark.django_db(transaction=True)]


async def opened(client: AsyncClient, path: str) -> Subscription:
    response = await client.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/event-stream")
    subscription = response._source  # type: ignore[attr-defined]
    assert isinstance(subscription, Subscription)
    await subscription.close()
    return subscription


async def logged_in(name: str, *permissions: str) -> tuple[AsyncClient, User]:
    user = await User.objects.acreate_user(name, password="x")
    for codename in permissions:
        await user.user_permissions.aadd(await Permission.objects.aget(codename=codename))
    client = AsyncClient()
    await client.aforce_login(user)
    return client, user


def delivery(data: bytes) -> PublishedEvent:
    return PublishedEvent(group="orders.order", id="1-1", wire=b"data: x\n\n", payload=data)


@pytest.mark.parametrize("prefix", ["/test/readme/orders", "/test/readme/sync/orders"])
async def test_the_readme_ownership_check_lets_the_owner_in(prefix: str) -> None:
    """The README's check, async and sync: 500 for every logged-in user before the fix."""
    alice, alice_user = await logged_in("alice")
    bob, _ = await logged_in("bob")
    order = await Order.objects.acreate(customer=alice_user)
    subscription = await opened(alice, f"{prefix}/{order.pk}/live")
    assert subscription.group == f"orders.order.{order.pk}"
    assert (await bob.get(f"{prefix}/{order.pk}/live")).status_code == 403
    assert (await AsyncClient().get(f"{prefix}/{order.pk}/live")).status_code == 401


async def test_the_readme_filter_shows_each_customer_their_orders() -> None:
    alice, alice_user = await logged_in("alice", "view_order")
    nobody, _ = await logged_in("nobody")
    subscription = await opened(alice, "/test/readme/orders/live")
    accepts = subscription.filter
    assert accepts is not None
    assert accepts(delivery(b'{"id": 1, "customer_id": %d}' % alice_user.pk))
    assert not accepts(delivery(b'{"id": 2, "customer_id": %d}' % (alice_user.pk + 1)))
    assert (await nobody.get("/test/readme/orders/live")).status_code == 403
    await opened(AsyncClient(), "/test/readme/items/live")


async def test_a_sync_check_may_use_the_orm_and_request_user() -> None:
    client, _ = await logged_in("carol")
    await opened(client, "/test/acc/checked")


async def test_a_sync_filter_factory_may_use_the_orm() -> None:
    client, _ = await logged_in("dave")
    subscription = await opened(client, "/test/acc/mine")
    assert subscription.filter is not None
    assert subscription.filter(delivery(b'{"owner": "dave"}'))
    assert not subscription.filter(delivery(b'{"owner": "eve"}'))


async def test_a_sync_get_group_override_may_use_the_orm() -> None:
    client, user = await logged_in("erin")
    assert (await opened(client, "/test/acc/per-user")).group == f"x.acc.user{user.pk}"


async def test_an_async_event_filter_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="plain sync callable"):
        await AsyncClient().get("/test/acc/async-filter")


@pytest.mark.parametrize("how", ["/test/acc/logout", "/test/acc/alogout", "end_user_streams"])
async def test_logging_out_ends_the_users_streams_in_process(how: str) -> None:
    """The in-memory layer: the logout's message reaches this process's hub."""
    client, user = await logged_in("frank")
    other, _ = await logged_in("grace")
    response = await client.get("/test/acc/mine")
    assert response.status_code == 200
    mine = response._source  # type: ignore[attr-defined]
    # Held: a response collected before it started releases its stream (response.py).
    their_response = await other.get("/test/acc/mine")
    theirs = their_response._source  # type: ignore[attr-defined]
    await until(lambda: get_hub().groups().get("x.acc.rows") == 2)
    assert get_hub().groups()[user_group(user)] == 1
    if how == "end_user_streams":
        await end_user_streams(user)
    else:
        assert (await client.post(how)).status_code == 200
    await until(lambda: mine.finished)
    assert user_group(user) not in get_hub().groups()
    assert not theirs.finished
    await mine.close()
    await theirs.close()
    assert get_hub().groups() == {}


async def test_a_re_check_sees_a_revoked_permission_and_a_check_now_false() -> None:
    client, user = await logged_in("heidi", "view_order")
    feed = (await client.get("/test/readme/orders/live"))._source  # type: ignore[attr-defined]
    assert await feed.access.still_allowed()
    await user.user_permissions.aclear()
    assert not await feed.access.still_allowed()

    order = await Order.objects.acreate(customer=user)
    path = f"/test/readme/sync/orders/{order.pk}/live"  # the README's sync check, re-run
    one = (await client.get(path))._source  # type: ignore[attr-defined]
    assert await one.access.still_allowed()
    order.customer = await User.objects.acreate_user("ivan")
    await order.asave()
    assert not await one.access.still_allowed()
    for subscription in (feed, one):
        await subscription.close()
