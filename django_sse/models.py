"""The outbox: model events written in the transaction that saved the row, relayed after it.

A row is one event for one or more groups (a model group and an object group), with its payload
already encoded as JSON text (``TextField``, not ``JSONField``: PostgreSQL's ``jsonb`` would
reorder the payload's keys). Rows are published in id order and deleted once published; a row
that stays here is an event that has not reached the channel layer yet.
"""

from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Space-separated: group names cannot contain spaces.
    groups = models.TextField()
    event = models.TextField()
    data = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "django_sse_outbox"
        verbose_name = "outbox event"

    def __str__(self) -> str:
        return f"{self.event} to {self.groups} (#{self.id})"
