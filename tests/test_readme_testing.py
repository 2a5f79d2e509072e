"""The README's "Testing your streams" code, run exactly as written there (so it cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest
from django.urls import path

from django_sse import EventSourceResponse, get_last_event_id, subscribe
from django_sse.live.hub import get_hub

README = Path(__file__).resolve().parent.parent / "README.md"


def section_code(title: str) -> str:
    text = README.read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, blocks
    return str(blocks[0])


async def scores(request: HttpRequest) -> EventSourceResponse:  # the view of "Live updates"
    return EventSourceResponse(subscribe("scores", last_event_id=get_last_event_id(request)))


urlpatterns = [path("scores/stream", scores)]


@pytest.mark.urls(__name__)
async def test_the_readme_example_runs_and_passes() -> None:
    code = section_code("Testing your streams")
    namespace: dict[str, Any] = {"__name__": "readme_testing"}
    exec(compile(code, f"{README}:Testing your streams", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests, "the README's block defines no test"
    for test in tests:
        await test()
    # Still subscribed: the stream stays open between reads, as the README says.
    assert get_hub().groups() == {"scores": 1}
