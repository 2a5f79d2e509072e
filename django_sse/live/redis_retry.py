"""Redis connection options that survive a Redis restart: one retry on a connection error.

A Redis server that restarts leaves every pooled connection dead, and redis-py finds out only
when a command fails on one: without a retry, the first publish after each restart failed (a
503 from the publishing view) for the replay log and for both channels_redis layers. One retry on
a fresh connection, after a short jittered pause, is safe for what django_sse sends: a dead
connection means the old server never answered, and a restarted one never saw the command.
Only connection errors are retried: after a timeout, Redis may have taken the command (an
``XADD`` sent twice would log the event twice).
"""

from __future__ import annotations

from typing import Any


def retry_options() -> dict[str, Any]:
    """redis-py client or pool keyword arguments: retry once on a connection error."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError

    return {
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=0.5),
            retries=1,
            supported_errors=(ConnectionError,),
        ),
        # Pipelines (the log's append) are retried only for the errors listed here.
        "retry_on_error": [ConnectionError],
    }


def channel_layer_host(url: str) -> dict[str, Any]:
    """A ``CHANNEL_LAYERS`` host for channels_redis with the same retry (see the README)."""
    return {"address": url, **retry_options()}
