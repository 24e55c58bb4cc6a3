"""Request and response bodies of the REST API (pydantic v2). Unknown request fields are refused."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from libs.common.audience import Audience
from libs.common.campaign_states import CampaignState

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# The template's own limits (length, characters, merge fields) are checked by libs.common.segments and
# libs.common.merge; this bound only stops absurd payloads before they are parsed.
Body = Annotated[str, StringConstraints(max_length=10_000)]
SegmentLimit = Annotated[int, Field(gt=0, le=10_000_000)]
ValidityPeriod = Annotated[int, Field(ge=1, le=36_000)]
MaxLateness = Annotated[int, Field(ge=60, le=604_800)]
# Seconds a recipient may be held for their local window (campaigns.hold_limit_s, migration 0044): up to a week.
HoldLimit = Annotated[int, Field(ge=0, le=604_800)]
_TRANSACTIONAL = ("a service text (a storm closure): skips the organisation's marketing cap, never quiet hours "
                  "or opt-outs")
_HOLD_LIMIT = ("seconds after the run's start a recipient may wait for their local window; "
               "one whose window opens later is not texted (outside_window)")


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    body: Body = ""
    audience: Audience | None = None
    sender_id: UUID | None = Field(default=None, description="null: the organisation's default sender")
    contact_email: Email | None = None
    segment_limit: SegmentLimit | None = Field(default=None, description="null: the organisation's limit")
    validity_period_s: ValidityPeriod = 14_400
    send_when_late: bool = Field(default=False, description="send a run found more than max_lateness_s late")
    max_lateness_s: MaxLateness = 3600
    track_links: bool = Field(default=False, description="replace each link by a tracked short link per member")
    transactional: bool = Field(default=False, description=_TRANSACTIONAL)
    hold_limit_s: HoldLimit = Field(default=86_400, description=_HOLD_LIMIT)


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fingerprint: str | None = Field(default=None, description="the content_fingerprint the approver read; "
                                                              "a campaign changed since is refused (409)")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="what the authors should change")


class CampaignUpdate(BaseModel):
    """A partial update: only the fields sent change. ``sender_id``, ``contact_email`` and ``audience``
    may be set to null; the others may not."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    body: Body | None = None
    audience: Audience | None = None
    sender_id: UUID | None = None
    contact_email: Email | None = None
    segment_limit: SegmentLimit | None = None
    validity_period_s: ValidityPeriod | None = None
    send_when_late: bool | None = None
    max_lateness_s: MaxLateness | None = None
    track_links: bool | None = None
    transactional: bool | None = Field(default=None, description=_TRANSACTIONAL)
    hold_limit_s: HoldLimit | None = Field(default=None, description=_HOLD_LIMIT)

    @field_validator("name", "body", "segment_limit", "validity_period_s", "send_when_late", "max_lateness_s",
                     "track_links", "transactional", "hold_limit_s")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class ScheduleIn(BaseModel):
    """Either ``at``, or ``rrule`` with ``start``. Times are wall-clock in the organisation's time zone
    (a value with an offset is converted to it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"at": "2026-03-10T09:00"},
                                        {"rrule": "FREQ=MONTHLY;BYDAY=2TU;COUNT=6", "start": "2026-03-01T09:00"}]},
    )

    at: datetime | None = None
    rrule: str | None = Field(default=None, max_length=500, description="RFC 5545 RRULE, without DTSTART")
    start: datetime | None = Field(default=None, description="the first date and time the rule counts from")


class CampaignOut(BaseModel):
    id: UUID
    name: str
    body: str
    audience: dict[str, Any] | None
    sender_id: UUID | None
    contact_email: str | None
    segment_limit: int
    effective_segment_limit: int = Field(description="segment_limit, capped by the account's maximum")
    validity_period_s: int
    schedule: dict[str, Any]
    state: CampaignState
    next_occurrence_at: datetime | None
    send_when_late: bool
    max_lateness_s: int
    track_links: bool
    transactional: bool = Field(description=_TRANSACTIONAL)
    hold_limit_s: int = Field(description=_HOLD_LIMIT)
    duplicated_from: UUID | None
    created_by: str | None
    updated_by: str | None
    approved_by: str | None
    approved_at: datetime | None = Field(default=None, description="when it was approved in review")
    review_comment: str | None = Field(default=None, description="why its last review was rejected")
    content_authors: list[str] = Field(default_factory=list,
                                       description="who wrote or changed its wording, audience or sender: "
                                                   "none of them may approve it")
    content_fingerprint: str = Field(description="digest of what an approval pins (wording, audience, sender, "
                                     "link tracking, transactional); pass it to approve")
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime
    actions: list[str] = Field(description="what can be done now: edit, delete, schedule, send_now, pause, ...")
    warnings: list[str]


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    total: int
    limit: int
    offset: int


class RunOut(BaseModel):
    id: UUID
    occurrence_at: datetime
    origin: Literal["schedule", "send_now"]
    state: str
    state_reason: str | None
    published_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    targeted: int
    excluded: int
    sent: int
    delivered: int
    undelivered: int
    failed: int
    dropped: int = Field(description="never sent: suppressed at send time, expired or cancelled")
    outside_window: int = Field(description="never sent: their local window did not open before the hold limit")
    frequency_capped: int = Field(description="never sent: over the organisation's marketing cap or a state's limit")
    segments: int
    cost: Decimal = Field(description="USD, Textpulse's estimate from the usage rollup: what the campaign page and "
                                      "alert e-mails show")
    actual_cost: Decimal = Field(description="USD: Twilio's reported price where it has one, the estimate elsewhere")
    cost_provisional: bool = Field(description="true while Twilio has not reported the price of every message")
    planned_segments: int
    estimated_cost: Decimal | None = Field(description="USD, estimated when the audience was resolved")
    opt_outs: int | None = Field(description="STOP replies to this run's texts; null until the usage service counts it")


class SendStarted(BaseModel):
    campaign: CampaignOut
    run: RunOut
    warnings: list[str] = Field(default=[], description="what could not be checked before sending, and why")


class RefusalOut(BaseModel):
    """Why a campaign would reach nobody (libs/common/send_checks.py): the words send-now refuses with."""

    field: str
    code: str
    message: str


class Occurrence(BaseModel):
    at: datetime = Field(description="UTC")
    local: datetime = Field(description="the same instant in the schedule's time zone")


class Occurrences(BaseModel):
    time_zone: str | None
    occurrences: list[Occurrence]
