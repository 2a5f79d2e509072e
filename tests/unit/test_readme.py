"""The "Testing your streams" page's code, run exactly as written there (so it cannot drift)."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest
from django.urls import path

from django_sse import EventSourceResponse, get_last_event_id, subscribe
from django_sse.live.hub import get_hub
from tests.support.readme_blocks import readme_block


async def scores(request: HttpRequest) -> EventSourceResponse:  # the view of "Live updates"
    return EventSourceResponse(subscribe("scores", last_event_id=get_last_event_id(request)))


urlpatterns = [path("scores/stream", scores)]


@pytest.mark.urls(__name__)
async def test_the_readme_example_runs_and_passes() -> None:
    block = readme_block("testing")
    namespace: dict[str, Any] = {"__name__": "readme_testing"}
    exec(compile(block.code, block.origin(), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests, f"{block.origin()} defines no test"
    for test in tests:
        await test()
    # Still subscribed: the stream stays open between reads, as the page says.
    assert get_hub().groups() == {"scores": 1}
