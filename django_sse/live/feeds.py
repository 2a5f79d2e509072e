"""Combined feeds: several ``SubscriptionView`` URLs served on one connection.

A page that follows several feeds opens one stream: the URL of its first feed plus one
``feed=<path and query of another feed>`` parameter per further feed
(docs/topics/feeds-and-tabs.md). The view of the first feed resolves every other path with
``django.urls.resolve``; each must be served by a ``SubscriptionView``, whose whole
authorization then runs for this request, before the first byte: one refusal (401/403) refuses
the stream, anything else that is wrong is a 400. The stream follows the union of every feed's
groups (a group named by two feeds is joined once) and each feed keeps its own event filter: an
event's id names the feeds it belongs to (multi.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from ..last_event_id import get_last_event_id, header_last_event_id, query_last_event_id
from ..response import EventSourceResponse
from .access import StreamAccess, call, reauthorize_interval
from .authorization import may_be_revoked
from .cursor import MAX_GROUPS, read
from .multi import Feed, GuardedMultiSubscription, MultiSubscription

if TYPE_CHECKING:
    from .views import SubscriptionView

FEED_PARAMETER = "feed"
# Feeds on one stream, the first one included (the client shares at most this many).
MAX_FEEDS = 16


def _bad(text: str) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(text, content_type="text/plain")


def resumes_a_combined_stream(request: HttpRequest) -> bool:
    """Whether the request resumes from a combined stream's id (``<feeds>:<cursor>``).

    A tab left alone with one feed of a shared connection resumes from the combined id it last
    relayed; only a multi-group stream reads the cursor, so that one feed is then served as one
    (each event id ``0:<cursor>``), rather than the client naming its feed a second time to get
    one (which resolved and authorized it twice).
    """
    last_event_id = get_last_event_id(request)
    return last_event_id is not None and ":" in last_event_id and read(last_event_id) is not None


def combines_feeds(view: SubscriptionView, request: HttpRequest) -> bool:
    """Whether ``view`` serves ``request`` a multi-group stream, with ids ``<feeds>:<cursor>``.

    It does for several groups (even one, by list), combined feeds, or one feed resuming from a
    combined stream.
    """
    from .views import SubscriptionView

    return bool(
        view.groups
        or FEED_PARAMETER in request.GET
        or type(view).get_groups is not SubscriptionView.get_groups
        or resumes_a_combined_stream(request)
    )


def resolve_feed(
    url: str, request: HttpRequest
) -> tuple[SubscriptionView, dict[str, Any], str | None] | None:
    """The view serving the same-origin feed ``url``, its URL kwargs and its own last id."""
    from .views import SubscriptionView

    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    path = unquote(parts.path)
    script_name = request.META.get("SCRIPT_NAME", "")
    if script_name and path.startswith(script_name.rstrip("/") + "/"):
        path = path[len(script_name.rstrip("/")) :]
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None)
    if not (isinstance(view_class, type) and issubclass(view_class, SubscriptionView)):
        return None
    view = view_class(**getattr(match.func, "view_initkwargs", {}))
    view.setup(request, *match.args, **match.kwargs)
    return view, dict(match.kwargs), query_last_event_id(parts.query)


async def combined_stream(
    first: SubscriptionView, request: HttpRequest, kwargs: dict[str, Any]
) -> HttpResponseBase:
    """The multi-group stream of ``first`` and the feeds its request names."""
    urls = request.GET.getlist(FEED_PARAMETER)
    if len(urls) + 1 > MAX_FEEDS:
        return _bad(f"At most {MAX_FEEDS} feeds on one stream.")
    views = [(first, kwargs, query_last_event_id(request.META.get("QUERY_STRING", "")))]
    for url in urls:
        resolved = resolve_feed(url, request)
        if resolved is None:
            return _bad("A feed is not the URL of a SubscriptionView.")
        views.append(resolved)
    user = await call(first.get_user, request)
    feeds: list[Feed] = []
    checks: list[tuple[SubscriptionView, str, dict[str, Any]]] = []
    for view, view_kwargs, last_event_id in views:
        opened = await view.open_feed(request, user, view_kwargs)
        if isinstance(opened, HttpResponseBase):
            return opened  # one refusal refuses the stream
        groups, event_filter = opened
        feeds.append(Feed(tuple(groups), event_filter, last_event_id))
        checks += [(view, group, view_kwargs) for group in groups]
    if len({group for feed in feeds for group in feed.groups}) > MAX_GROUPS:
        return _bad(f"At most {MAX_GROUPS} groups on one stream.")
    # Only the header positions the whole stream: a feed's own lastEventId is its own.
    options: dict[str, Any] = {
        "last_event_id": header_last_event_id(request),
        "queue_size": first.queue_size,
    }
    subscription: MultiSubscription
    if any(may_be_revoked(view, user) for view, _, _ in views):
        interval = reauthorize_interval(first.reauthorize_interval)
        group = feeds[0].groups[0]
        access = StreamAccess(first, request, group, user, kwargs, interval)
        access.checks = checks
        subscription = GuardedMultiSubscription(feeds, access=access, **options)
    else:
        subscription = MultiSubscription(feeds, **options)
    return EventSourceResponse(subscription, ping_interval=first.ping_interval)
