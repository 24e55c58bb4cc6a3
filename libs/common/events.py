"""Every event that crosses Kafka, as pydantic v2 models serialised to JSON.

Each model carries ``schema_version``; a consumer accepts only the versions its model declares, so a
producer that changes a shape must bump the version and consumers must learn it first. Unknown
fields are refused: a typo in a producer is a bug to see on the DLQ, not a silently dropped value.
Keys are chosen per topic in ``topics.py`` (a recipient is keyed by its sender, an opt-out by its
phone number), so that everything about one key stays ordered on one partition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Sender = Annotated[str, StringConstraints(pattern=r"^(\+[1-9]\d{6,14}|MG[0-9a-f]{32})$")]
SendOutcome = Literal["sent", "failed", "suppressed", "expired", "cancelled", "outside_window",
                      "frequency_capped"]  # how a recipient's send ended


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=_now)


class CampaignDue(Event):
    """A run of a campaign is due now: the audience service resolves its recipients."""

    org_id: UUID
    campaign_id: UUID
    run_id: UUID
    scheduled_for: datetime


class Recipient(Event):
    """One preflighted text for one number, ready for the dispatcher (keyed by sender)."""

    org_id: UUID
    campaign_id: UUID
    run_id: UUID
    recipient_id: UUID
    sender: Sender
    to: E164
    body: Annotated[str, StringConstraints(min_length=1, max_length=1600)]
    segments: int = Field(ge=1, le=10)
    validity_period_s: int = Field(default=14_400, ge=1, le=36_000)


class SendResult(Event):
    """What became of one recipient's text at submission time (keyed by run)."""

    org_id: UUID
    run_id: UUID
    recipient_id: UUID
    sender: Sender
    to: E164
    outcome: SendOutcome
    message_sid: Annotated[str, StringConstraints(pattern=r"^(SM|MM)[0-9a-f]{32}$")] | None = None
    error_code: int | None = None
    segments: int = Field(ge=0, le=10)


class MessageStatus(Event):
    """A Twilio status callback, as received and verified by the opt-out service (keyed by SID)."""

    org_id: UUID
    message_sid: Annotated[str, StringConstraints(pattern=r"^(SM|MM)[0-9a-f]{32}$")]
    status: Literal[
        "accepted", "scheduled", "queued", "sending", "sent", "delivered",
        "undelivered", "failed", "canceled", "partially_delivered", "read",
    ]
    error_code: int | None = None
    price: Decimal | None = None


class ConsentChanged(Event):
    """A number opted out or back in (keyed by phone number); ``sender`` None means organisation-wide."""

    org_id: UUID
    phone: E164
    sender: Sender | None = None
    action: Literal["opt_out", "opt_in"]
    source: Literal["keyword", "twilio_21610", "staff", "import"]
    message_sid: str | None = None


class WebhookReceived(Event):
    """A Twilio webhook whose signature the opt-out service verified, appended before Twilio got its 200.

    ``event_id`` is the request's id: the consumer stores each id once in ``webhook_requests``, so a
    record delivered twice, or also written to PostgreSQL directly when Kafka was slow, counts once.
    ``occurred_at`` is when the request was received. ``params`` are the form's fields as signed.
    """

    kind: Literal["inbound", "status"]
    org_id: UUID
    account_sid: Annotated[str, StringConstraints(pattern=r"^AC[0-9a-f]{32}$")]
    url: Annotated[str, StringConstraints(min_length=1)]
    params: dict[str, str]


class LinkClicked(Event):
    """A member's tracked short link was followed (keyed by run). ``occurred_at`` is when; ``event_id``
    is the click's id, so a record delivered twice, or also written directly when Kafka was away, counts
    once. ``client_network`` is the /24 (IPv4) or /48 (IPv6) the request came from, never the address."""

    org_id: UUID
    run_id: UUID
    recipient_id: UUID
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{12}$")]
    agent_class: Literal["preview_bot", "mobile", "desktop", "other"]
    client_network: Annotated[str, StringConstraints(max_length=64)] | None = None


class DeadLetter(BaseModel):
    """What a consumer could not handle, with everything needed to understand and replay it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    error_code: str
    error: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: str  # the original bytes, decoded as UTF-8 with backslash escapes for what is not
    consumer_group: str
    failed_at: datetime = Field(default_factory=_now)
