"""Views for the shutdown, bad-input and access tests: publishing, per-user streams, POST streams.

They are test-only (mounted by ``tests.urls``), so the publish endpoint answers GET requests:
the shutdown and access tests drive it with plain clients and no CSRF token.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_sse import EventSourceResponse, ServerSentEvent, publish
from django_sse.delivery import Delivery
from django_sse.subscribe import EventFilter, subscribe
from django_sse.views import SubscriptionView


async def publish_view(request: HttpRequest) -> JsonResponse:
    """Publish ``count`` events ``{"n": start + i, "owner": ...}`` to ``group``; their ids.

    ``owners`` (comma-separated) take turns as the owner of the events.
    """
    group = request.GET.get("group", "")
    count = int(request.GET.get("count", "1"))
    start = int(request.GET.get("start", "0"))
    owners = request.GET.get("owners", "").split(",")
    ids = []
    for n in range(start, start + count):
        owner = owners[n % len(owners)]
        ids.append(await publish(group, ServerSentEvent(data={"n": n, "owner": owner})))
    return JsonResponse({"ids": ids})


@csrf_exempt
@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    """Log in with ``username``/``password``: the session cookie a browser would get."""
    user = authenticate(
        request,
        username=request.POST.get("username", ""),
        password=request.POST.get("password", ""),
    )
    if user is None:
        return HttpResponse("Bad credentials.", status=403)
    login(request, user)
    return HttpResponse("ok")


def own_rows(request: HttpRequest, user: Any) -> EventFilter:
    """Only the events whose payload names this user as its owner."""
    username = user.get_username()

    def accepts(delivery: Delivery) -> bool:
        data = delivery.data
        return isinstance(data, dict) and data.get("owner") == username

    return accepts


async def post_stream(request: HttpRequest) -> HttpResponse:
    """An event stream served over POST: CsrfViewMiddleware guards it like any other POST."""
    if request.method != "POST":
        return HttpResponseBadRequest("POST only.")
    group = request.POST.get("group", "x.posted")
    try:
        subscription = subscribe(group)
    except ValueError:
        return HttpResponseBadRequest("Invalid group name.")
    return EventSourceResponse(subscription)


urlpatterns = [
    path("test/acc/publish", publish_view),
    path("test/acc/login", login_view),
    path(
        "test/acc/mine",
        SubscriptionView.as_view(group="x.rows", login_required=True, event_filter=own_rows),
    ),
    path("test/acc/post-stream", post_stream),
]
