"""The documented import path of ``channel_layer_host`` (see ``django_sse.live.redis_retry``)."""

from .live.redis_retry import channel_layer_host

__all__ = ["channel_layer_host"]
