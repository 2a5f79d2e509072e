"""``{% sse_stream %}``: what it renders, read back the way a browser would."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import django
import pytest
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template, TemplateSyntaxError, engines
from django.test import RequestFactory
from django.urls import NoReverseMatch
from django.utils.functional import SimpleLazyObject

HOSTILE = '</script><script>alert("x")</script><!--&\u2028\'"'


class ScriptReader(HTMLParser):
    """Collects <script> elements as an HTML5 parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._current, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append((self._current, "".join(self._text)))
            self._current = None


def render(source: str, request: Any = None, **context: Any) -> str:
    if request is None:
        request = RequestFactory().get("/")
    return Template("{% load sse %}" + source).render(Context({"request": request, **context}))


def scripts(html: str) -> list[tuple[dict[str, str | None], str]]:
    reader = ScriptReader()
    reader.feed(html)
    reader.close()
    return reader.scripts


def config_of(html: str) -> dict[str, Any]:
    found = [text for attrs, text in scripts(html) if "data-django-sse-config" in attrs]
    assert len(found) == 1
    loaded: dict[str, Any] = json.loads(found[0])
    return loaded


def client_script(html: str) -> dict[str, str | None]:
    found = [attrs for attrs, _ in scripts(html) if attrs.get("src")]
    assert len(found) == 1
    return found[0]


def test_url_name_is_reversed() -> None:
    html = render('{% sse_stream "items-stream" %}')
    assert config_of(html) == {
        "url": "/items/stream",
        "events": [],
        "withCredentials": False,
        "reconnect": True,
    }


def test_client_is_the_apps_static_file() -> None:
    html = render('{% sse_stream "items-stream" %}')
    attrs = client_script(html)
    assert attrs["src"] == "/static/django_sse/sse.js"
    assert "defer" in attrs
    assert "nonce" not in attrs
    assert finders.find("django_sse/sse.js") is not None


@pytest.mark.urls("tests.support.urls_templatetag")
def test_reverse_with_positional_and_keyword_arguments() -> None:
    assert config_of(render('{% sse_stream "by-pk" 42 %}'))["url"] == "/things/42/stream"
    assert config_of(render('{% sse_stream "by-slug" slug=s %}', s="a-b"))["url"] == (
        "/things/a-b/events"
    )


@pytest.mark.urls("tests.support.urls_templatetag")
def test_hostile_url_arguments_cannot_break_out() -> None:
    html = render('{% sse_stream "by-path" rest=hostile %}', hostile=HOSTILE)
    url = config_of(html)["url"]
    assert url.startswith("/raw/")
    assert "<" not in html.split("data-django-sse-config>", 1)[1].split("</script>", 1)[0]


def test_unknown_url_name_fails_loudly() -> None:
    with pytest.raises(NoReverseMatch):
        render('{% sse_stream "no-such-stream" %}')


def test_a_path_is_used_as_is() -> None:
    assert config_of(render('{% sse_stream "/custom/stream?x=1" %}'))["url"] == (
        "/custom/stream?x=1"
    )


def test_path_with_arguments_is_an_error() -> None:
    with pytest.raises(TemplateSyntaxError):
        render('{% sse_stream "/custom/stream" 1 %}')


def test_hostile_path_and_event_names_stay_inside_the_json() -> None:
    html = render(
        "{% sse_stream url events=names last_event_id=hostile %}",
        url="/s/" + HOSTILE,
        names=[HOSTILE, "created"],
        hostile=HOSTILE,
    )
    config = config_of(html)
    assert config["url"] == "/s/" + HOSTILE
    assert config["events"] == [HOSTILE, "created"]
    assert config["lastEventId"] == HOSTILE
    # Exactly the two elements the tag renders: nothing was injected.
    assert len(scripts(html)) == 2
    assert len(re.findall(r"<script", html)) == 2
    assert "<!--" not in html


def test_options() -> None:
    html = render(
        '{% sse_stream "items-stream" events="created  updated deleted" with_credentials=True'
        " reconnect=False backoff=250 max_backoff=4000 last_event_id=7 %}"
    )
    assert config_of(html) == {
        "url": "/items/stream",
        "events": ["created", "updated", "deleted"],
        "withCredentials": True,
        "reconnect": False,
        "lastEventId": "7",
        "backoff": 250,
        "maxBackoff": 4000,
    }


def test_share_false_gives_the_feed_a_connection_of_its_own() -> None:
    # Shared is the default and is not written out; share=False tells the client to opt out.
    assert "share" not in config_of(render('{% sse_stream "items-stream" %}'))
    assert config_of(render('{% sse_stream "items-stream" share=False %}'))["share"] is False


def test_nonce_from_request_attribute_django_csp() -> None:
    request = RequestFactory().get("/")
    request.csp_nonce = SimpleLazyObject(lambda: "abc123")  # type: ignore[attr-defined]
    attrs = client_script(render('{% sse_stream "items-stream" %}', request=request))
    assert attrs["nonce"] == "abc123"


def test_nonce_from_context_processor() -> None:
    html = render('{% sse_stream "items-stream" %}', csp_nonce="fromcontext")
    assert client_script(html)["nonce"] == "fromcontext"


@pytest.mark.skipif(django.VERSION < (6, 0), reason="Django 6.0 added CSP support")
@pytest.mark.parametrize("processor", [True, False], ids=["context-processor", "middleware-only"])
def test_nonce_of_djangos_own_csp_middleware(settings: Any, processor: bool) -> None:
    from django.middleware.csp import ContentSecurityPolicyMiddleware
    from django.utils.csp import CSP

    settings.SECURE_CSP = {"script-src": [CSP.SELF, CSP.NONCE]}
    if processor:
        settings.TEMPLATES = [
            {
                **settings.TEMPLATES[0],
                "OPTIONS": {"context_processors": ["django.template.context_processors.csp"]},
            }
        ]

    def view(request: HttpRequest) -> HttpResponse:
        source = '{% load sse %}{% sse_stream "items-stream" %}'
        return HttpResponse(engines["django"].from_string(source).render({}, request))

    response = ContentSecurityPolicyMiddleware(view)(RequestFactory().get("/"))
    assert isinstance(response, HttpResponse)
    nonce = client_script(response.content.decode())["nonce"]
    assert nonce
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]


def test_hostile_nonce_is_escaped() -> None:
    html = render('{% sse_stream "items-stream" %}', csp_nonce='"><script>x()</script>')
    assert client_script(html)["nonce"] == '"><script>x()</script>'
    assert len(scripts(html)) == 2


def test_without_a_request() -> None:
    html = Template('{% load sse %}{% sse_stream "items-stream" %}').render(Context())
    assert config_of(html)["url"] == "/items/stream"


def load_failure_listeners(html: str) -> list[tuple[dict[str, str | None], str]]:
    return [(attrs, text) for attrs, text in scripts(html) if "did not load" in text]


def test_with_debug_a_listener_says_why_when_the_client_does_not_load(settings: Any) -> None:
    settings.DEBUG = True
    html = render('{% sse_stream "items-stream" %}')
    ((attrs, text),) = load_failure_listeners(html)
    assert attrs == {}
    assert "static files" in text and "staticfiles_urlpatterns()" in text
    # It listens on the client's <script>, the element right before it.
    assert html.index('src="/static/django_sse/sse.js"') < html.index("did not load")


def test_the_listener_carries_the_nonce(settings: Any) -> None:
    settings.DEBUG = True
    html = render('{% sse_stream "items-stream" %}', csp_nonce="n0nce")
    ((attrs, _),) = load_failure_listeners(html)
    assert attrs == {"nonce": "n0nce"}


def test_no_listener_where_a_policy_would_refuse_it_or_without_debug(settings: Any) -> None:
    settings.DEBUG = True
    settings.SECURE_CSP = {"script-src": ["'self'"]}  # and no nonce for this request
    assert load_failure_listeners(render('{% sse_stream "items-stream" %}')) == []
    settings.SECURE_CSP = {}
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "csp.middleware.CSPMiddleware"]
    assert load_failure_listeners(render('{% sse_stream "items-stream" %}')) == []
    settings.DEBUG = False
    settings.MIDDLEWARE = []
    assert load_failure_listeners(render('{% sse_stream "items-stream" %}')) == []
