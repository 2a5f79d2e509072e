"""What ``SubscriptionView`` checks before the first byte: its groups, the user, the filter.

Every check runs before the response starts, so a refusal is a real 401/403 (which also stops
the browser's ``EventSource`` from reconnecting), never a 200 stream that ends at once. The
view's methods (``authorize``, ``get_filter``, ``get_groups``) are the override points; these
functions are what the view's own versions do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseBase

from .access import call
from .filtering import EventFilter
from .groups import validate_group

if TYPE_CHECKING:
    from .views import SubscriptionView

# check(request, group, **url_kwargs) -> bool (or an awaitable of one): may this user subscribe?
Check = Callable[..., Any]


def refuse(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain")


async def refusal(
    request: HttpRequest,
    group: str,
    user: Any,
    kwargs: dict[str, Any],
    *,
    login_required: bool,
    permission_required: str | Sequence[str],
    check: Check | None,
) -> HttpResponseBase | None:
    """The 401 or 403 for ``user`` on ``group``, or ``None`` when it may subscribe."""
    authenticated = bool(getattr(user, "is_authenticated", False))
    if login_required and not authenticated:
        return refuse(401, "Authentication required.")
    permissions = (
        [permission_required] if isinstance(permission_required, str) else list(permission_required)
    )
    if permissions:
        if not authenticated:
            return refuse(401, "Authentication required.")
        if not await user.ahas_perms(permissions):
            return refuse(403, "Forbidden.")
    if check is not None and not await call(check, request, group, **kwargs):
        return refuse(403, "Forbidden.")
    return None


async def authorized_feed(
    view: SubscriptionView, request: HttpRequest, user: Any, kwargs: dict[str, Any]
) -> HttpResponseBase | tuple[list[str], EventFilter | None]:
    """``view``'s groups, each authorized for ``request``, and its filter; or a refusal."""
    try:
        groups = [validate_group(g) for g in await view.get_groups(request, **kwargs)]
    except (ValueError, KeyError, IndexError):
        return HttpResponseBadRequest("Invalid group name.", content_type="text/plain")
    for group in groups:
        refused: HttpResponseBase | None = await call(
            view.authorize, request, group, user, **kwargs
        )
        if refused is not None:
            return refused
    event_filter: EventFilter | None = await call(view.get_filter, request, user)
    if event_filter is not None and iscoroutinefunction(event_filter):
        raise TypeError(
            "An event filter is called for every event, on the event loop: it must be a "
            "plain sync callable, not a coroutine function (do async work in the factory)."
        )
    return groups, event_filter


def may_be_revoked(view: SubscriptionView, user: Any) -> bool:
    """Whether anything could end ``user``'s open stream of ``view`` (access.py re-checks it)."""
    from .views import SubscriptionView  # views.py imports this module

    # An open stream of an anonymous user on an open view has nothing that could end.
    return bool(
        getattr(user, "is_authenticated", False)
        or view.login_required
        or view.permission_required
        or view.check is not None
        or type(view).authorize is not SubscriptionView.authorize
    )
