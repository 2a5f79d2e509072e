"""Template library ``sse``: ``{% load sse %}`` then ``{% sse_stream "url-name" %}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

_django_get_nonce: Callable[[HttpRequest], object] | None
try:  # Django >= 6.0
    from django.middleware.csp import get_nonce as _django_get_nonce
except ImportError:  # pragma: no cover - depends on the Django version
    _django_get_nonce = None

register = template.Library()

CLIENT = "django_sse/sse.js"

# Development only (DEBUG): says why nothing on the page is live when the client fails to load,
# e.g. a 404 because Daphne and uvicorn serve no static files, followed by the browser's
# "Refused to execute script ... MIME type text/html", neither of which names the cause. It
# follows the client's <script defer>, whose error event fires only after parsing, so the
# listener is always in place first.
LOAD_FAILURE_LISTENER = mark_safe(
    "document.currentScript.previousElementSibling.addEventListener('error', function (e) {"
    "console.error('django_sse: ' + e.target.src + ' did not load, so the sse_stream tag "
    "does nothing on this page. Are static files served? runserver serves them while DEBUG "
    "is on; under daphne or uvicorn add staticfiles_urlpatterns() to the URLconf (DEBUG), "
    "or use WhiteNoise or your web server after collectstatic (README: Install).');});"
)

# What json_script escapes, for the same reason: inside <script> the HTML parser looks only
# for "</script" and "<!--", so no value may produce a "<"; "&" and ">" go too, for symmetry
# with json_script and for pages that copy the text into HTML.
_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def _json_for_script(value: Any) -> SafeString:
    text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    return mark_safe(text.translate(_JSON_SCRIPT_ESCAPES))


def csp_nonce(context: template.Context) -> str | None:
    """The request's CSP nonce, if the project uses one.

    Django 6's ``csp`` context processor and django-csp's both put ``csp_nonce`` in the
    context; without a context processor, Django 6's middleware keeps it for ``get_nonce()``
    and django-csp's sets ``request.csp_nonce``. Reading the lazy nonce generates it, which is
    what makes the middleware add it to the header.
    """
    nonce = context.get("csp_nonce")
    request = context.get("request")
    if nonce is None and request is not None and _django_get_nonce is not None:
        nonce = _django_get_nonce(request)
    if nonce is None and request is not None:
        nonce = getattr(request, "csp_nonce", None)
    if nonce is None:
        return None
    return str(nonce) or None


def _events(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(name) for name in value]


@register.simple_tag(takes_context=True)
def sse_stream(
    context: template.Context,
    url: str,
    *args: Any,
    events: Any = None,
    with_credentials: bool = False,
    last_event_id: Any = None,
    reconnect: bool = True,
    backoff: int | None = None,
    max_backoff: int | None = None,
    share: bool = True,
    **kwargs: Any,
) -> SafeString:
    """Connect the enclosing element to an event stream.

    ``url`` is a URL name, reversed with the remaining positional or keyword arguments, or a
    path or URL (anything containing "/"), used as is. ``events`` lists the event names to
    dispatch as ``sse:<name>`` DOM events (a space-separated string or a list); "message" and
    "reset" are always listened to, and so are the events named by declarative targets.
    ``last_event_id`` is where a first visit resumes from: the id the page was rendered at.
    ``backoff`` and ``max_backoff`` (ms) bound the client's own reconnects after the browser
    gives up; ``reconnect=False`` closes the stream when it ends or fails instead.
    ``share=False`` gives this feed a connection of its own: by default the tags of a page
    share one connection, and the tabs of a browser one for all of them
    (docs/topics/feeds-and-tabs.md).
    """
    if "/" in url:
        if args or kwargs:
            raise template.TemplateSyntaxError(
                "sse_stream takes URL arguments only with a URL name, not with a path."
            )
        resolved = url
    else:
        resolved = reverse(url, args=args or None, kwargs=kwargs or None)
    config: dict[str, Any] = {
        "url": resolved,
        "events": _events(events),
        "withCredentials": bool(with_credentials),
        "reconnect": bool(reconnect),
    }
    if last_event_id not in (None, ""):
        config["lastEventId"] = str(last_event_id)
    if backoff is not None:
        config["backoff"] = int(backoff)
    if max_backoff is not None:
        config["maxBackoff"] = int(max_backoff)
    if not share:
        config["share"] = False
    nonce = csp_nonce(context)
    client = (
        format_html('<script src="{}" defer nonce="{}"></script>', static(CLIENT), nonce)
        if nonce
        else format_html('<script src="{}" defer></script>', static(CLIENT))
    )
    return format_html(
        '<script type="application/json" data-django-sse-config>{}</script>{}{}',
        _json_for_script(config),
        client,
        _load_failure_listener(nonce),
    )


def _load_failure_listener(nonce: str | None) -> SafeString:
    if not settings.DEBUG:
        return mark_safe("")
    if nonce:
        return format_html('<script nonce="{}">{}</script>', nonce, LOAD_FAILURE_LISTENER)
    if _csp_configured():
        # Without the request's nonce the policy would refuse it: one more console error.
        return mark_safe("")
    return format_html("<script>{}</script>", LOAD_FAILURE_LISTENER)


def _csp_configured() -> bool:
    """Does Django's own CSP (6.0+) or django-csp send a policy?"""
    if getattr(settings, "SECURE_CSP", None) or getattr(settings, "SECURE_CSP_REPORT_ONLY", None):
        return True
    return "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE
