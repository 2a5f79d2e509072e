"""URL patterns with arguments, for the template tag's reverse() tests."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def nothing(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse()


urlpatterns = [
    path("things/<int:pk>/stream", nothing, name="by-pk"),
    path("things/<slug:slug>/events", nothing, name="by-slug"),
    path("raw/<path:rest>", nothing, name="by-path"),
    path("items/stream", nothing, name="items-stream"),
]
