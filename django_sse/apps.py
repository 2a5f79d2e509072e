from django.apps import AppConfig


class DjangoSSEConfig(AppConfig):
    name = "django_sse"
    verbose_name = "Server-Sent Events"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .serving import process_role

        # Tells a server from a shell or a worker, for the in-memory layer's lost publishes.
        process_role.watch_requests()
