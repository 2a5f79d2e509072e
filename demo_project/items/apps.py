from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "demo_project.items"
    label = "items"

    def ready(self) -> None:
        from django_sse.live.presence import presence_changed
        from django_sse.signals import register

        from .models import Item, Note
        from .viewers import publish_viewers

        # Saves and deletes (admin, shell, views) publish to "items.item" and "items.item.<id>".
        register(Item)
        # "items.note" and "items.note.<id>": every user's notes, which notes.py filters per user.
        register(Note)
        # The live page's "N viewing" badge.
        presence_changed.connect(publish_viewers, dispatch_uid="items.viewers")
