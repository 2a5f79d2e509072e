"""A real HTTP client holding one event stream open in a thread, for the live-update tests.

httpx reads the stream in a background thread while the test saves items in other processes;
the bytes are parsed with the spec-exact parser. Pings (the servers run with a short ping
interval) wake the reader regularly, so ``close()`` returns quickly.
"""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.sse_parser import Event, parse
from tests.support.waiting import until


class LiveStream:
    def __init__(self, url: str, last_event_id: str | None = None) -> None:
        self.url = url
        self.headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.buffer = bytearray()
        self.status: int | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise AssertionError(f"{url}: no response headers within 20 s")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(20, read=10)) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self.status = response.status_code
                self._ready.set()
                for chunk in response.iter_raw():
                    self.buffer += chunk
                    if self._stop.is_set():
                        return
        except BaseException as exc:
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._ready.set()

    def events(self) -> list[Event]:
        return parse(bytes(self.buffer)).events

    def wait_for(self, count: int, timeout: float = 60) -> list[Event]:
        """The first ``count`` events; fails if they do not arrive within ``timeout`` seconds."""

        def arrived() -> list[Event]:
            if self.error is not None:
                raise AssertionError(f"{self.url}: stream failed") from self.error
            return self.events()[:count] if len(self.events()) >= count else []

        return until(arrived, within=timeout)

    def settle(self, quiet: float = 1.0) -> list[Event]:
        """All events, after ``quiet`` seconds without a new one (to show nothing more comes)."""
        seen = -1
        while len(self.events()) != seen:
            seen = len(self.events())
            time.sleep(quiet)
        return self.events()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
