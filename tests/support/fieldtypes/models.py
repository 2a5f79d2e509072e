"""A model with every built-in field type, registered for live updates (tests only)."""

from __future__ import annotations

import datetime
import decimal
import uuid

from django.db import models
from django.db.models.functions import Lower
from pydantic import BaseModel, field_validator


class Related(models.Model):
    id = models.SmallAutoField(primary_key=True)
    name = models.CharField(max_length=20, default="related")


class EveryField(models.Model):
    # BigAutoField id (DEFAULT_AUTO_FIELD)
    boolean = models.BooleanField(default=False)
    char = models.CharField(max_length=50, default="")
    text = models.TextField(default="")
    slug = models.SlugField(default="a-slug")
    email = models.EmailField(default="a@example.com")
    url = models.URLField(default="https://example.com/")
    integer = models.IntegerField(default=0)
    small = models.SmallIntegerField(default=0)
    big = models.BigIntegerField(default=0)
    positive = models.PositiveIntegerField(default=0)
    positive_small = models.PositiveSmallIntegerField(default=0)
    positive_big = models.PositiveBigIntegerField(default=0)
    floating = models.FloatField(default=0.0)
    decimal = models.DecimalField(max_digits=10, decimal_places=2, default=decimal.Decimal(0))
    moment = models.DateTimeField(default=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    day = models.DateField(default=datetime.date(2024, 1, 1))
    clock = models.TimeField(default=datetime.time(12, 0))
    duration = models.DurationField(default=datetime.timedelta(0))
    uuid = models.UUIDField(default=uuid.UUID(int=0))
    ip = models.GenericIPAddressField(default="127.0.0.1")
    file_path = models.FilePathField(path="/tmp", default="", blank=True)
    file = models.FileField(upload_to="files/", default="", blank=True)
    image = models.ImageField(upload_to="images/", default="", blank=True)
    binary = models.BinaryField(default=b"")
    json = models.JSONField(default=dict)
    nullable = models.IntegerField(null=True, default=None)
    generated = models.GeneratedField(
        expression=Lower("char"), output_field=models.CharField(max_length=50), db_persist=True
    )
    related = models.ForeignKey(Related, null=True, on_delete=models.SET_NULL, related_name="+")
    one = models.OneToOneField(Related, null=True, on_delete=models.SET_NULL, related_name="+")
    many = models.ManyToManyField(Related, related_name="+")  # not a column: not in the payload


class Picky(models.Model):
    """A model whose custom schema raises for some rows: a bug in user code, logged."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=20)

    class Schema(BaseModel):
        id: int
        name: str

        @field_validator("name")
        @classmethod
        def not_bad(cls, value: str) -> str:
            if value == "bad":
                raise ValueError("this schema refuses 'bad'")
            return value
