"""``SubscriptionView``: a ready-made stream of a group, authorized before the first byte.

Everything that can refuse a subscriber runs before the response starts, so a refusal is a real
401/403 (which also stops the browser's ``EventSource`` from reconnecting), never a 200 stream
that ends at once::

    path("items/live", SubscriptionView.as_view(group="items.item"), name="items-live"),
    path(
        "items/<int:pk>/live",
        SubscriptionView.as_view(group="items.item.{pk}", login_required=True, check=owns_item),
    ),
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase
from django.views import View

from .last_event_id import get_last_event_id
from .response import EventSourceResponse
from .subscribe import EventFilter, subscribe

# check(request, group, **url_kwargs) -> bool (or an awaitable of one): may this user subscribe?
Check = Callable[..., Any]
# event_filter(request, user) -> a per-event filter for this subscriber, or None for all events.
FilterFactory = Callable[[HttpRequest, Any], EventFilter | None]


def _refuse(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain")


class SubscriptionView(View):
    """Stream the group ``group`` (``str.format``-ed with the URL's keyword arguments).

    - ``login_required``: anonymous users get 401.
    - ``permission_required``: a permission name or several; a user without them gets 403.
    - ``check``: ``check(request, group, **kwargs)``, sync or async, e.g. object ownership;
      a false result gets 403.
    - ``event_filter``: ``event_filter(request, user)`` returns a filter called with each
      event (``delivery.data`` is the decoded payload), e.g. to show a user only their rows.

    A group name built from the URL that is not a valid group name gets 400. Override
    ``get_group``, ``authorize`` or ``get_filter`` for anything else.
    """

    http_method_names = ["get"]
    group: str = ""
    login_required: bool = False
    permission_required: str | Sequence[str] = ()
    check: Check | None = None
    event_filter: FilterFactory | None = None
    ping_interval: float | None = None
    queue_size: int | None = None

    def get_group(self, request: HttpRequest, **kwargs: Any) -> str:
        if not self.group:
            raise ValueError("SubscriptionView needs a group: as_view(group=...)")
        return self.group.format(**kwargs)

    async def get_user(self, request: HttpRequest) -> Any:
        auser = getattr(request, "auser", None)
        if auser is None:  # no AuthenticationMiddleware
            from django.contrib.auth.models import AnonymousUser

            return AnonymousUser()
        return await auser()

    async def authorize(
        self, request: HttpRequest, group: str, user: Any, **kwargs: Any
    ) -> HttpResponseBase | None:
        """Return a refusal, or ``None`` to let the subscription start."""
        authenticated = bool(getattr(user, "is_authenticated", False))
        if self.login_required and not authenticated:
            return _refuse(401, "Authentication required.")
        permissions = (
            [self.permission_required]
            if isinstance(self.permission_required, str)
            else list(self.permission_required)
        )
        if permissions:
            if not authenticated:
                return _refuse(401, "Authentication required.")
            if not await user.ahas_perms(permissions):
                return _refuse(403, "Forbidden.")
        if self.check is not None:
            # Given to as_view() or set with staticmethod(): called without self.
            allowed = self.check(request, group, **kwargs)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                return _refuse(403, "Forbidden.")
        return None

    def get_filter(self, request: HttpRequest, user: Any) -> EventFilter | None:
        if self.event_filter is None:
            return None
        return self.event_filter(request, user)

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            group = self.get_group(request, **kwargs)
            subscription = subscribe(
                group,
                last_event_id=get_last_event_id(request),
                queue_size=self.queue_size,
            )
        except (ValueError, KeyError, IndexError):
            return HttpResponseBadRequest("Invalid group name.", content_type="text/plain")
        user = await self.get_user(request)
        refusal = await self.authorize(request, group, user, **kwargs)
        if refusal is not None:
            return refusal
        subscription.filter = self.get_filter(request, user)
        return EventSourceResponse(subscription, ping_interval=self.ping_interval)
