"""The documented import path of ``SubscriptionView`` (it lives in ``django_sse.live.views``)."""

from .live.views import SubscriptionView

__all__ = ["SubscriptionView"]
