from django.contrib import admin
from django.urls import path

from demo_project.items import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("items/stream", views.items_stream, name="items-stream"),
    path("logs/stream", views.logs_stream, name="logs-stream"),
]
