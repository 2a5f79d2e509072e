"""Views for the shutdown, bad-input and access tests: publishing, per-user streams, POST streams.

They are test-only (mounted by ``tests.support.urls``), so the publish endpoint answers GET
requests, and
login and logout take POSTs without a CSRF token: the tests drive them with plain clients.
The README's Access-control example is mounted under ``test/readme/``, run from README.md itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.contrib.auth import alogout, authenticate, login, logout
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_sse import EventSourceResponse, ServerSentEvent, publish
from django_sse.live.delivery import PublishedEvent
from django_sse.live.subscription import EventFilter, subscribe
from django_sse.live.views import SubscriptionView
from tests.support.readme import python_blocks, run_as_module


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


@csrf_exempt
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # sends user_logged_out from sync code
    return HttpResponse("ok")


@csrf_exempt
async def alogout_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse("POST only.", status=405)
    await alogout(request)  # sends user_logged_out from async code
    return HttpResponse("ok")


def own_rows(request: HttpRequest, user: Any) -> EventFilter:
    """Only the events whose payload names this user as its owner.

    A sync factory that queries (it runs in the request's thread); the filter itself does not.
    """
    username = User.objects.get(pk=user.pk).get_username()

    def accepts(delivery: PublishedEvent) -> bool:
        data = delivery.data
        return isinstance(data, dict) and data.get("owner") == username

    return accepts


def counted_check(request: HttpRequest, group: str, **kwargs: Any) -> bool:
    """A sync check that uses the ORM and ``request.user``, and counts its calls per user.

    ``checks-<username>`` in the markers folder gets a line per call: the first check and every
    re-check while the stream is open.
    """
    username = request.user.get_username()
    allowed = User.objects.filter(username=username, is_active=True).exists()
    folder = os.environ.get("DJANGO_SSE_TEST_MARKERS")
    if folder:
        with Path(folder, f"checks-{username}").open("a") as marks:
            marks.write("checked\n")
    return allowed


class PerUserGroupView(SubscriptionView):
    """``get_group`` overridden with sync code that queries: it runs in the request's thread."""

    login_required = True

    def get_group(self, request: HttpRequest, **kwargs: Any) -> str:
        assert request.user.pk is not None  # login_required
        return f"x.acc.user{User.objects.get(pk=request.user.pk).pk}"


def async_filter(request: HttpRequest, user: Any) -> Any:
    async def accepts(delivery: PublishedEvent) -> bool:
        return True

    return accepts


# The README's Access-control example, run from README.md: its URLs, and a view with the
# sync check that the README shows next to it.
_readme_example, _readme_sync_check = python_blocks("**Access control.**")
readme = run_as_module(_readme_example, "readme_access", "tests.support.orders")
_sync = dict(readme.__dict__)
exec(_readme_sync_check, _sync)
readme_urlpatterns = [
    *readme.urlpatterns,
    path(
        "sync/orders/<int:pk>/live",
        SubscriptionView.as_view(
            group="orders.order.{pk}", login_required=True, check=_sync["owns_order"]
        ),
    ),
]


async def post_stream(request: HttpRequest) -> HttpResponseBase:
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
        SubscriptionView.as_view(group="x.acc.rows", login_required=True, event_filter=own_rows),
    ),
    path("test/acc/logout", logout_view),
    path("test/acc/alogout", alogout_view),
    path(
        "test/acc/checked",
        SubscriptionView.as_view(
            group="x.acc.rows", login_required=True, check=counted_check, event_filter=own_rows
        ),
    ),
    path("test/acc/per-user", PerUserGroupView.as_view()),
    path("test/acc/async-filter", SubscriptionView.as_view(group="x.f", event_filter=async_filter)),
    path("test/acc/two/<str:a>/<str:b>", SubscriptionView.as_view(group="x.two.{a}.{b}")),
    path(
        "test/acc/docs/<path:path>",
        SubscriptionView.as_view(group="x.docs.{path}", dotted_kwargs=["path"]),
    ),
    path("test/acc/post-stream", post_stream),
    path("test/readme/", include((readme_urlpatterns, "readme"))),
]
