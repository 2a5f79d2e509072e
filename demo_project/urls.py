from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from demo_project.items import notes, pages, views
from django_sse.views import SubscriptionView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("items/stream", views.items_stream, name="items-stream"),
    path("logs/stream", views.logs_stream, name="logs-stream"),
    # Live Item changes (created/updated/deleted), published by django_sse.signals.register.
    path("items/live", SubscriptionView.as_view(group="items.item"), name="items-live"),
    path("items/<int:pk>/live", views.item_live, name="item-live"),
    path("", pages.home, name="home"),
    path("logs/", pages.logs, name="logs"),
    # Per-user streams: SubscriptionView with login_required, check and event_filter.
    path("notes/", notes.notes, name="notes"),
    path("notes/live", notes.notes_live, name="notes-live"),
    path("notes/<int:pk>/live", notes.note_live, name="note-live"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="items/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]

# Daphne and uvicorn serve no static files: with DEBUG on, Django does (as runserver would).
urlpatterns += staticfiles_urlpatterns()
