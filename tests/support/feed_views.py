"""Test-only feeds for the combined-stream tests (test_feeds.py, test_multi_servers.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.http import HttpRequest
from django.urls import path

from django_sse.live.delivery import PublishedEvent
from django_sse.live.subscription import EventFilter
from django_sse.live.views import SubscriptionView


def never(request: HttpRequest, group: str, **kwargs: Any) -> bool:
    return False


# How often each test's counted feed was authorized: check() runs once per group and request.
authorizations: Counter[str] = Counter()


def counted(request: HttpRequest, group: str, **kwargs: Any) -> bool:
    authorizations[group] += 1
    return True


def only_kept(request: HttpRequest, user: Any) -> EventFilter:
    def accepts(delivery: PublishedEvent) -> bool:
        return bool(isinstance(delivery.data, dict) and delivery.data.get("keep"))

    return accepts


urlpatterns = [
    # Two groups of one view, and one group per view: the feeds of a page.
    path(
        "test/feeds/pair/<str:name>",
        SubscriptionView.as_view(groups=["fd.{name}.a", "fd.{name}.b"]),
    ),
    path(
        "test/feeds/one/<str:name>/<str:part>", SubscriptionView.as_view(group="fd.{name}.{part}")
    ),
    path(
        "test/feeds/kept/<str:name>/<str:part>",
        SubscriptionView.as_view(group="fd.{name}.{part}", event_filter=only_kept),
    ),
    path(
        "test/feeds/counted/<str:name>/<str:part>",
        SubscriptionView.as_view(group="fd.{name}.{part}", check=counted),
    ),
    path(
        "test/feeds/denied/<str:name>", SubscriptionView.as_view(group="fd.{name}.x", check=never)
    ),
    path(
        "test/feeds/login/<str:name>",
        SubscriptionView.as_view(group="fd.{name}.y", login_required=True),
    ),
]
