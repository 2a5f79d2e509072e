"""The documented import path of model registration (it lives in ``django_sse.live.signals``)."""

from .live.signals import (
    publish_instances,
    publish_queryset,
    register,
    registration_for,
    unregister,
)

__all__ = ["publish_instances", "publish_queryset", "register", "registration_for", "unregister"]
