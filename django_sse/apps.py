import atexit

from django.apps import AppConfig


class DjangoSSEConfig(AppConfig):
    name = "django_sse"
    verbose_name = "Server-Sent Events"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import checks  # noqa: F401  (registers the system checks)
        from .live.access import end_streams_on_logout
        from .live.hub import hub_loops
        from .live.serving import process_role
        from .shutdown import finish_abandoned_loops

        # Logging out ends the user's open streams, in every process (see access.py).
        user_logged_out.connect(end_streams_on_logout, dispatch_uid="django_sse.logout")
        # Tells a server from a shell or a worker, for the in-memory layer's lost publishes.
        process_role.watch_requests()
        atexit.register(finish_abandoned_loops, hub_loops)
