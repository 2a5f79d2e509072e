"""An idle stream lets go of its request's worker thread, not only of its database connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async

from django_sse.live.db import release_database_connections


def nothing() -> None:
    """Stands for Django's request_started receivers, which start the request's thread."""


async def test_release_drops_the_requests_thread_and_later_sync_calls_still_run() -> None:
    async with ThreadSensitiveContext() as context:
        await sync_to_async(nothing)()
        executor = SyncToAsync.context_to_thread_executor[context]
        await release_database_connections()
        assert context not in SyncToAsync.context_to_thread_executor
        # Shut down: its thread ends instead of idling for the whole stream.
        with pytest.raises(RuntimeError, match="after shutdown"):
            executor.submit(nothing)
        assert await sync_to_async(lambda: 42)() == 42


async def test_an_executor_given_by_the_caller_is_left_alone() -> None:
    with ThreadPoolExecutor(max_workers=1) as own:
        async with ThreadSensitiveContext(executor=own) as context:
            await release_database_connections()
            assert SyncToAsync.context_to_thread_executor[context] is own
            assert own.submit(lambda: 42).result(timeout=30) == 42  # not shut down
