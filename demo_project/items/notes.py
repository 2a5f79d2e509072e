"""Per-user notes: one group for everybody's notes, and each user sees only their own.

``SubscriptionView`` does the access control before the first byte of a stream:
``login_required`` answers 401 to anonymous users, ``check`` 403 to a user who does not own the
note, and ``event_filter`` picks, per subscriber, the events of the shared group ``items.note``
that this user may see. Both keep applying while the stream is open (a logout ends it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_sse import latest_event_id_sync
from django_sse.views import SubscriptionView

from .models import Note


def own_notes(request: HttpRequest, user: Any) -> Callable[[Any], bool]:
    """The filter of one subscriber: built once, in a thread (it may query); called per event."""
    owner_id = user.pk
    return lambda event: bool(event.data["owner_id"] == owner_id)  # per event: no query here


async def owns_note(request: HttpRequest, group: str, pk: int) -> bool:
    """Whether the user may follow note ``pk`` (403 when not)."""
    user = await request.auser()  # not request.user: that would query from async code
    return await Note.objects.filter(pk=pk, owner_id=user.pk).aexists()


# Every note of the user, live: the group holds everybody's, the filter keeps the user's own.
notes_live = SubscriptionView.as_view(
    group="items.note", login_required=True, event_filter=own_notes
)
# One note: only its owner may follow it.
note_live = SubscriptionView.as_view(group="items.note.{pk}", login_required=True, check=owns_note)


class NoteForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Note
        fields = ["text"]
        widgets = {"text": forms.TextInput(attrs={"placeholder": "A note", "aria-label": "Note"})}


@login_required
def notes(request: HttpRequest) -> HttpResponse:
    """The user's notes, kept live by ``GET /notes/live``; the form adds one."""
    form = NoteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.owner = request.user
        form.save()
        return redirect("notes")
    latest = latest_event_id_sync("items.note")  # before the query, as for the items
    mine = list(Note.objects.filter(owner_id=request.user.pk))
    return render(request, "items/notes.html", {"notes": mine, "form": form, "latest": latest})
