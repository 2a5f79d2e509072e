"""The demo's pages on a phone-sized screen, and its form's errors, in Chromium on a real Daphne.

At 390 px wide (a common phone) no page may scroll sideways, and a long item name, rendered by
the server or inserted live by the client, wraps inside its card. Invalid form input is shown
next to its field and keeps what was typed. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.chromium import ARTIFACTS, Console
from tests.conftest import StartServer
from tests.support.servers import ServerProcess, manage

pytestmark = [pytest.mark.server, pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
# No break opportunity at all, and a long one made of ordinary words.
UNBROKEN = "Supercalifragilisticexpialidocious" * 5
WORDY = "A rather long item name made of ordinary words that must wrap onto several lines"
# The page must not be wider than the viewport.
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# Every item's name and price lie inside the item's card, and every card inside the list.
INSIDE_CARDS = """() => {
  const within = (inner, outer) => {
    const a = inner.getBoundingClientRect(), b = outer.getBoundingClientRect();
    return a.left >= b.left - 0.5 && a.right <= b.right + 0.5;
  };
  const list = document.querySelector("#items");
  return [...list.querySelectorAll(":scope > li")].every(
    (li) => within(li, list) && [...li.children].every((child) => within(child, li))
  );
}"""


@pytest.fixture
def phone(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("console", lambda message: console.messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    yield page
    context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    assert path.stat().st_size > 0


def post_item(server: ServerProcess, name: str, price: str) -> httpx.Response:
    """The demo's form, posted as a browser would (with its CSRF token)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/").text)
        assert token is not None
        data = {"name": name, "price": price, "csrfmiddlewaretoken": token.group(1)}
        return client.post("/", data=data)


def test_the_pages_fit_a_phone_and_long_names_stay_in_their_cards(
    start: StartServer, server_database: str, phone: Any, console: Console
) -> None:
    code = (
        "from demo_project.items.models import Item\n"
        f"Item.objects.create(name={UNBROKEN!r}, price='1234567.89')\n"
        f"Item.objects.create(name={WORDY!r}, price='5.00')\n"
    )
    manage("shell", "--no-imports", "-c", code, env={"DATABASE_URL": server_database})
    server = start("daphne")
    phone.goto(server.url + "/")
    phone.wait_for_selector("#live[data-sse-state=open]")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    assert phone.evaluate(INSIDE_CARDS)

    # One more, inserted live by the client from the list's <template>.
    live_name = "Live" + "W" * 150 + uuid.uuid4().hex
    assert post_item(server, live_name, "9999999.99").status_code == 302
    phone.wait_for_function(
        "name => document.querySelector('#items').textContent.includes(name)", arg=live_name
    )
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    assert phone.evaluate(INSIDE_CARDS)
    screenshot(phone, "demo-home-390.png")

    phone.goto(server.url + "/logs/")
    phone.wait_for_selector("section[data-sse-state=closed]")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(phone, "demo-logs-390.png")
    assert console.errors() == []


def test_invalid_input_is_shown_at_its_field_and_keeps_what_was_typed(
    start: StartServer, phone: Any
) -> None:
    server = start("daphne")
    phone.goto(server.url + "/")
    name = "Gizmo " + uuid.uuid4().hex[:6]
    phone.fill("input[name=name]", name)
    phone.fill("input[name=price]", "12.345")
    phone.click("button[type=submit]")
    phone.wait_for_selector("#id_price[aria-invalid=true]")

    # The message belongs to the price field (aria-describedby), in words, not a raw dict.
    described_by = phone.get_attribute("#id_price", "aria-describedby")
    assert described_by is not None
    message = phone.text_content(f"#{described_by}")
    assert message is not None and "decimal places" in message
    assert phone.get_attribute("#id_name", "aria-invalid") is None
    assert "price" not in (phone.text_content("form") or "").replace(message, "").lower()
    # What was typed is still there, to correct rather than type again.
    assert phone.input_value("input[name=name]") == name
    assert phone.input_value("input[name=price]") == "12.345"
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(phone, "demo-form-error-390.png")

    # Corrected, it is saved and the page is back to an empty form.
    phone.fill("input[name=price]", "12.34")
    phone.click("button[type=submit]")
    phone.wait_for_function(
        "name => document.querySelector('#items').textContent.includes(name)", arg=name
    )
    assert phone.input_value("input[name=name]") == ""
    assert phone.query_selector("[aria-invalid=true]") is None
