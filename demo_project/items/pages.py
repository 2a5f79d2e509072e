"""The demo's HTML pages: the live item list and the log tail."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def logs(request: HttpRequest) -> HttpResponse:
    return render(request, "logs.html")
