from django.apps import AppConfig


class OrdersConfig(AppConfig):
    """A test app for the README's Access-control example: its groups are ``orders.order``."""

    name = "tests.support.orders"
    label = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_sse.live.signals import register

        from .models import Order

        register(Order)
