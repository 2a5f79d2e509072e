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

from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views import View

from ..limits import limit_per_client
from .access import call
from .authorization import Check as Check  # re-exported: checks are typed with it
from .authorization import authorized_feed, refusal
from .feeds import combined_stream, combines_feeds
from .filtering import EventFilter
from .groups import format_group
from .single import single_stream

# event_filter(request, user) -> a per-event filter for this subscriber, or None for all events.
FilterFactory = Callable[[HttpRequest, Any], EventFilter | None]


class SubscriptionView(View):
    """Stream the group ``group`` (``str.format``-ed with the URL's keyword arguments).

    - ``login_required``: anonymous users get 401.
    - ``permission_required``: a permission name or several; a user without them gets 403.
    - ``check``: ``check(request, group, **kwargs)``, sync or async, e.g. object ownership;
      a false result gets 403.
    - ``event_filter``: ``event_filter(request, user)``, sync or async, returns a filter called
      with each event (``delivery.data`` is the decoded payload), e.g. to show a user only their
      rows. The filter runs on the event loop for every event: a plain, fast sync callable that
      does not touch the database (the factory may, and can precompute what the filter needs).
    - ``dotted_kwargs``: URL keyword arguments whose values may contain ``.``; any other value
      formatted into the group must be one segment of its name (400 otherwise), so that
      ``"x.{name}"`` can never reach ``"x.private.rows"``.
    - ``reauthorize_interval``: seconds between re-checks of the authorization while the stream
      is open (default ``DJANGO_SSE["REAUTHORIZE_INTERVAL"]``); logging out ends it at once.
    - ``max_streams_per_client``: how many streams of this view one client may hold open in
      this process at once (``None``, the default: no limit); past it a new one gets 429 with a
      jittered ``Retry-After``. Who "one client" is says ``stream_limit_key(request, user)``
      (sync or async; ``None`` exempts the request): by default the user for an authenticated
      request, else the address in ``REMOTE_ADDR`` (behind a proxy, override it to read the
      address your proxy sets). Counted per view class, per process, like
      ``DJANGO_SSE["MAX_STREAMS"]`` (which every stream of the process counts against, and which
      answers 503).

    Sync hooks (``check``, ``event_filter``, overrides of ``get_group``, ``authorize``,
    ``get_filter``) run in the request's thread, where the ORM works; async ones are awaited.
    A group name built from the URL that is not a valid group name gets 400.
    """

    http_method_names = ["get"]
    group: str = ""
    # Several group templates: one multi-group stream, each group authorized (feeds.py).
    groups: Sequence[str] = ()
    login_required: bool = False
    permission_required: str | Sequence[str] = ()
    check: Check | None = None
    event_filter: FilterFactory | None = None
    dotted_kwargs: Sequence[str] = ()
    ping_interval: float | None = None
    queue_size: int | None = None
    reauthorize_interval: float | None = None
    max_streams_per_client: int | None = None

    def get_group(self, request: HttpRequest, **kwargs: Any) -> str:
        if not self.group:
            raise ValueError("SubscriptionView needs a group: as_view(group=...)")
        return format_group(self.group, kwargs, dotted=self.dotted_kwargs)

    async def get_groups(self, request: HttpRequest, **kwargs: Any) -> list[str]:
        """Every group this view streams: ``groups`` formatted, or the one of ``get_group``."""
        if self.groups:
            return [format_group(t, kwargs, dotted=self.dotted_kwargs) for t in self.groups]
        return [await self._group(request, **kwargs)]

    def stream_limit_key(self, request: HttpRequest, user: Any) -> str | None:
        """Who a stream counts against for ``max_streams_per_client`` (see the class docstring)."""
        if getattr(user, "is_authenticated", False):
            return f"{type(self).__qualname__}:user:{user.pk}"
        return f"{type(self).__qualname__}:address:{request.META.get('REMOTE_ADDR', '')}"

    async def get_user(self, request: HttpRequest) -> Any:
        auser = getattr(request, "auser", None)
        if auser is None:  # no AuthenticationMiddleware
            from django.contrib.auth.models import AnonymousUser

            return AnonymousUser()
        return await auser()

    async def authorize(
        self, request: HttpRequest, group: str, user: Any, **kwargs: Any
    ) -> HttpResponseBase | None:
        """Return a refusal, or ``None`` to let the subscription start (or go on)."""
        # ``check`` given to as_view() or set with staticmethod(): called without self.
        return await refusal(
            request,
            group,
            user,
            kwargs,
            login_required=self.login_required,
            permission_required=self.permission_required,
            check=self.check,
        )

    async def get_filter(self, request: HttpRequest, user: Any) -> EventFilter | None:
        if self.event_filter is None:
            return None
        event_filter: EventFilter | None = await call(self.event_filter, request, user)
        return event_filter

    async def open_feed(
        self, request: HttpRequest, user: Any, kwargs: dict[str, Any]
    ) -> HttpResponseBase | tuple[list[str], EventFilter | None]:
        """This view's groups, each authorized for ``request``, and its filter; or a refusal."""
        return await authorized_feed(self, request, user, kwargs)

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = await self.open_stream(request, kwargs)
        return await limit_per_client(self, request, response)  # type: ignore[no-any-return]

    async def open_stream(self, request: HttpRequest, kwargs: dict[str, Any]) -> HttpResponseBase:
        """The stream for ``request``, or a refusal (400, 401, 403)."""
        if combines_feeds(self, request):
            return await combined_stream(self, request, kwargs)
        return await single_stream(self, request, kwargs)

    async def _group(self, request: HttpRequest, **kwargs: Any) -> str:
        if type(self).get_group is SubscriptionView.get_group and "get_group" not in vars(self):
            return self.get_group(request, **kwargs)  # ours: formats a string, no thread needed
        group: str = await call(self.get_group, request, **kwargs)
        return group
