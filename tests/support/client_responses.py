"""Typed access to the streaming body of a response Django's test clients return.

``Client.get`` and ``AsyncClient.get`` are typed as returning a plain ``HttpResponse``; an event
stream is a ``StreamingHttpResponse`` whose ``streaming_content`` is sync or async. These check
which one it is and say so to the type checker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import cast

from django.http import StreamingHttpResponse


def async_content(response: object) -> AsyncIterator[bytes]:
    """The body of an async streaming response a test client returned, typed as such."""
    assert isinstance(response, StreamingHttpResponse) and response.is_async
    return cast(AsyncIterator[bytes], response.streaming_content)


def sync_content(response: object) -> Iterator[bytes]:
    """The body of a streaming response the sync test client returned, typed as such."""
    assert isinstance(response, StreamingHttpResponse)
    return cast(Iterator[bytes], response.streaming_content)
