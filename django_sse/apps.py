import atexit

from django.apps import AppConfig


class DjangoSSEConfig(AppConfig):
    name = "django_sse"
    verbose_name = "Server-Sent Events"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .shutdown import finish_abandoned_loops

        atexit.register(finish_abandoned_loops)
