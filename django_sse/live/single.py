"""One group's stream for a ``SubscriptionView`` request (several groups': feeds.py).

The view's user is authorized for its group first (authorization.py); a stream the user's
authorization may lose while it is open is a ``GuardedSubscription``, re-checked while it runs
(access.py), and every stream is tagged with its user for ``presence(group)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseBase

from ..last_event_id import get_last_event_id
from ..response import EventSourceResponse
from .access import GuardedSubscription, StreamAccess, call, reauthorize_interval
from .authorization import may_be_revoked
from .presence import identify
from .subscription import Subscription

if TYPE_CHECKING:
    from .views import SubscriptionView


async def single_stream(
    view: SubscriptionView, request: HttpRequest, kwargs: dict[str, Any]
) -> HttpResponseBase:
    """The stream of ``view``'s one group for ``request``, or a refusal (400, 401, 403)."""
    user = await call(view.get_user, request)
    opened = await view.open_feed(request, user, kwargs)
    if isinstance(opened, HttpResponseBase):
        return opened
    (group,), event_filter = opened
    options: dict[str, Any] = {
        "last_event_id": get_last_event_id(request),
        "filter": event_filter,
        "queue_size": view.queue_size,
    }
    subscription: Subscription
    if may_be_revoked(view, user):
        interval = reauthorize_interval(view.reauthorize_interval)
        access = StreamAccess(view, request, group, user, kwargs, interval)
        subscription = GuardedSubscription(group, access=access, **options)
    else:
        subscription = Subscription(group, **options)
    identify(subscription, user)  # whose stream it is, for presence(group)
    return EventSourceResponse(subscription, ping_interval=view.ping_interval)
