"""The documented import path of ending a user's streams (see ``django_sse.live.access``)."""

from .live.access import end_user_streams, end_user_streams_sync

__all__ = ["end_user_streams", "end_user_streams_sync"]
