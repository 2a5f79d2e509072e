from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "demo_project.items"
    label = "items"
