"""Views every Django app under test shares."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


async def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")
