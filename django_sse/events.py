"""``ServerSentEvent``: one event of a stream, validated so that it can always be encoded."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _single_line(field: str) -> AfterValidator:
    def check(value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError(
                f"{field} must be a single line (no CR or LF): a line break would start a new field"
            )
        return value

    return AfterValidator(check)


def _no_null(value: str) -> str:
    if "\0" in value:
        raise ValueError("id must not contain NUL: clients ignore such an id")
    return value


class ServerSentEvent(BaseModel):
    """One Server-Sent Event.

    ``data`` is JSON-encoded (pydantic models, dicts, lists, strings, numbers, datetime, Decimal,
    UUID, lazy translation strings); ``raw_data`` is sent as it is, for HTML fragments or log
    lines. Both may span several lines: each line becomes its own ``data:`` field on the wire.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    data: Any = None
    raw_data: str | None = None
    event: Annotated[str, _single_line("event")] | None = None
    id: Annotated[str, _single_line("id"), AfterValidator(_no_null)] | None = None
    retry: Annotated[int, Field(ge=0, strict=True)] | None = Field(
        default=None, description="Reconnection delay for the client, in milliseconds."
    )
    comment: str | None = None

    @model_validator(mode="after")
    def _data_xor_raw_data(self) -> Self:
        if self.data is not None and self.raw_data is not None:
            raise ValueError(
                "data and raw_data are mutually exclusive: use data for values to JSON-encode, "
                "raw_data for a string to send as it is"
            )
        return self
