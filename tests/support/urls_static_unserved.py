"""The demo's pages without ``staticfiles_urlpatterns()``: under Daphne, ``sse.js`` is a 404.

Like a project that runs ``daphne`` or ``uvicorn`` in development (``DEBUG`` on) and relies on
``runserver`` habits: nothing serves static files.
"""

from django.contrib import admin
from django.urls import path

from demo_project.items import notes, pages
from django_sse.live.views import SubscriptionView
from tests.support import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("items/live", SubscriptionView.as_view(group="items.item"), name="items-live"),
    path("", pages.home, name="home"),
    path("logs/", pages.logs, name="logs"),
    path("notes/", notes.notes, name="notes"),  # the page header links to it
    path("test/health", views.health),
]
