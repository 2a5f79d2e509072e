from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path

from demo_project.items import pages, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("items/stream", views.items_stream, name="items-stream"),
    path("logs/stream", views.logs_stream, name="logs-stream"),
    path("logs/", pages.logs, name="logs"),
]

# Daphne and uvicorn serve no static files: with DEBUG on, Django does (as runserver would).
urlpatterns += staticfiles_urlpatterns()
