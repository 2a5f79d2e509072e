"""The demo's HTML pages: the live item list and the log tail."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_sse import latest_event_id_sync

from .models import Item


class ItemForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Item
        fields = ["name", "price"]
        widgets = {
            "name": forms.TextInput(attrs={"placeholder": "Name", "aria-label": "Name"}),
            # Text, not type=number: a typo gets the server's message next to the field, and the
            # value stays as typed (a number input would silently empty it).
            "price": forms.TextInput(
                attrs={"placeholder": "Price", "aria-label": "Price", "inputmode": "decimal"}
            ),
        }


def home(request: HttpRequest) -> HttpResponse:
    """The items, kept live by ``GET /items/live``; the form adds one (its save publishes).

    Invalid input renders the page again with the form bound: each field keeps what was typed
    and shows its own errors.
    """
    form = ItemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        # Post/redirect/get: the new item arrives through the stream like any other change.
        return redirect("home")
    # Read before the items: whatever changes after this id is replayed when the page connects.
    latest = latest_event_id_sync("items.item")
    items = list(Item.objects.all())
    return render(request, "items/home.html", {"items": items, "form": form, "latest": latest})


def logs(request: HttpRequest) -> HttpResponse:
    return render(request, "items/logs.html")
