"""The id a reconnecting client last saw: ``Last-Event-ID`` or the ``lastEventId`` parameter."""

from __future__ import annotations

from urllib.parse import unquote_plus

from django.http import HttpRequest

MAX_BYTES = 1024
QUERY_PARAMETER = "lastEventId"


def _valid(value: str) -> str | None:
    if not value or "\r" in value or "\n" in value or "\0" in value:
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None
    return value


def _from_header(raw: str) -> str | None:
    # Servers hand header bytes to Django as latin-1 text; the id itself is UTF-8.
    try:
        value = raw.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        value = raw  # already decoded text (e.g. set by a test client)
    except UnicodeDecodeError:
        return None
    return _valid(value)


def _from_query(query_string: str) -> str | None:
    found: str | None = None
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name, errors="replace") != QUERY_PARAMETER:
            continue
        try:
            found = unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            found = None
    return _valid(found) if found is not None else None


def get_last_event_id(request: HttpRequest) -> str | None:
    """Return the request's last event id, or ``None``.

    The header wins over the query parameter: a browser's own reconnect sends the newest id in
    the header, while the parameter was fixed when the page built the URL. Values over 1 KiB,
    with CR, LF or NUL, or not UTF-8 count as absent.
    """
    header = request.headers.get("last-event-id")
    if header is not None:
        value = _from_header(header)
        if value is not None:
            return value
    return _from_query(request.META.get("QUERY_STRING", ""))


def header_last_event_id(request: HttpRequest) -> str | None:
    """The ``Last-Event-ID`` header alone (a browser's own reconnect), or ``None``."""
    header = request.headers.get("last-event-id")
    return _from_header(header) if header is not None else None


def query_last_event_id(query_string: str) -> str | None:
    """The ``lastEventId`` parameter of a query string (a feed URL's own), or ``None``."""
    return _from_query(query_string)
