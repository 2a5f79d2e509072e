from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from demo_project.items import pages, views
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
]

# Daphne and uvicorn serve no static files: with DEBUG on, Django does (as runserver would).
urlpatterns += staticfiles_urlpatterns()
