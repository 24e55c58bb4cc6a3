"""CSV audience uploads and audience previews.

- ``POST /api/v1/audiences/csv`` (multipart: ``file``, and optionally ``mobile_column``,
  ``member_id_column``, ``first_name_column``, ``last_name_column`` naming headers; other headers are
  guessed, see :mod:`libs.common.csv_audience`): the file is received into a spool bounded by the cap
  (:mod:`services.api.csv_receiver`), read as a stream and stored in batches
  (:mod:`services.api.upload_storage`), and the answer gives the counts by reason for every row (201).
- ``GET /api/v1/audiences/csv/{id}``: the same summary; ``GET .../rejections.csv``: the report of the
  first 5,000 refused rows (``rejections_note`` and the report's first row say so when there were more),
  every cell made inert for spreadsheets.
- ``POST /api/v1/audiences/preview`` ``{"audience": {...}, "body": "...", "sender_id": ...}``: who a
  campaign audience would reach, by reason, and what the whole audience would cost, without creating a
  run (:mod:`services.api.audience_sample`): the audience's size (iMIS's ``TotalCount``; exact for a CSV
  or list), a bounded sample classified by the run's rules with each member's text rendered, the
  sample's GSM-7 / UCS-2 split and segments per recipient, the estimate scaled to the whole audience
  (recipients; segments and cost as low / expected / high), ``refusal`` when nobody would receive it, and
  the send ``plan`` (:mod:`services.api.send_planning`) for a run starting at ``start_at`` (default now):
  recipients sendable at once, held until a local time ("3,040 members will be held until 8 am Central
  tomorrow"), outside the hold limit, over a frequency cap, and the expected finish.

Counts by reason are the audience service's rules (:mod:`libs.common.audience_rules`):
``row_*``/``cell_too_long``, ``missing_mobile`` and ``invalid_number`` are rows refused when the file was
read (in the report); ``duplicate_member``, ``opted_out`` (the source's flag or the suppression table),
``bad_number`` and ``duplicate_number`` are rows kept but excluded at send time; with a body,
``render_failed`` and ``over_segment_limit`` too.

Bad input is a problem+json naming the field: 413 for a file over the size limit (``file_too_large``, as it
arrives, chunked or not), 422 for the rest (``csv_empty``, ``csv_not_utf8``, ``csv_mobile_column_missing``,
``csv_too_many_rows`` for more than 500,000 rows accepted and refused alike, ...). Another organisation's upload or
list is a 404.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from libs.common import audience_rules as rules
from libs.common.audience import Audience
from libs.common.audience_rules import AudienceMember
from libs.common.csv_audience import CsvRefused, CsvStream, rejection_report, rejections_note
from libs.common.db import transaction
from libs.common.secret_store import SecretStore
from services.api import audience_sample, audit, send_planning, upload_storage, uploads_db
from services.api.audit import CallerDep
from services.api.csv_receiver import FileTooLarge, received_csv
from services.api.deps import ActorDep, OrgDep, PoolDep, SecretsDep, WebDep
from services.api.errors import InvalidInput, NotFound
from services.api.schemas import HoldLimit, RefusalOut

router = APIRouter(prefix="/audiences", tags=["audiences"])
# Where uploads arrive (under the API prefix): main.py gives this path the upload's body cap, not the JSON one.
CSV_UPLOAD_PATH: Final = "/audiences/csv"

# 200,000 rows of a typical member export are 15-30 MB; ``app.state.csv_upload_max_bytes`` overrides this.
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024
# Room for the multipart framing and mapping fields (csv_receiver bounds those at 20 x 1 KB). A megabyte, not
# a few KB, so the file's own cap (exact, in csv_receiver) always speaks first, with the file's limit in its
# words, even when the server reads the last chunks of a body at once; the body cap is only a backstop.
MULTIPART_OVERHEAD: Final = 1024 * 1024
_MAPPING_FIELDS: Final = {"mobile_column": "mobile", "member_id_column": "member_id",
                          "first_name_column": "first_name", "last_name_column": "last_name"}

Member = tuple[str, str | None]  # member id, mobile as the source has it


class UploadSummary(BaseModel):
    id: UUID
    filename: str
    headers: list[str]
    mapping: dict[str, str] = Field(description="field -> header, as resolved")
    rows_accepted: int
    rows_rejected: int = Field(description="rows refused when the file was read; see rejections_url")
    rejections_shown: int = Field(description="refused rows in the report: the first 5,000 at most")
    rejections_note: str | None = Field(description="when the report holds only the first refused rows, the "
                                                    "words saying so ('showing the first 5,000 of 12,000 ...')")
    recipients: int = Field(description="rows that would be texted (before the message body is known)")
    by_reason: dict[str, int]
    rejections_url: str
    created_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience
    body: Annotated[str, Field(max_length=10_000)] | None = Field(
        default=None, description="the message; without it nothing is rendered and segments are not estimated")
    sender_id: UUID | None = Field(default=None, description="the campaign's sender; default: the organisation's")
    start_at: AwareDatetime | None = Field(default=None, description="when the run would start; default: now")
    transactional: bool = Field(default=False, description="the campaign's: a service text skips the marketing cap")
    hold_limit_s: HoldLimit = Field(default=86_400, description="the campaign's: seconds a recipient may be held "
                                                                "for their local window")


class Spread(BaseModel):
    low: int
    expected: int
    high: int


class MoneySpread(BaseModel):
    low: str
    expected: str
    high: str


class SegmentsPerRecipient(BaseModel):
    min: int
    median: int
    max: int


class AudienceEstimateOut(BaseModel):
    recipients: int = Field(description="for the whole audience: the sample's share scaled, or exact")
    exact: bool = Field(description="true when the sample was the whole audience")
    segments: Spread
    cost: MoneySpread = Field(description="USD; recipients whose country has no price are left out")
    unpriced_regions: list[str]
    pumping_protection_may_apply: bool


class HeldOut(BaseModel):
    until: datetime
    time_zone: str = Field(description="the zone whose window opens then (IANA)")
    count: int
    words: str = Field(description="e.g. '3,040 members will be held until 8 am Central tomorrow.'")


class PlanOut(BaseModel):
    """The recipients looked at, by what the dispatcher would do with each at the start."""

    start_at: datetime
    sendable_now: int
    held: list[HeldOut]
    outside_window: int = Field(description="their window does not open before the hold limit: never texted")
    frequency_capped: int = Field(description="over the organisation's marketing cap or a state's limit")
    finishes_at: datetime | None = Field(description="when the last text would go, at the sender's pace through "
                                                     "the windows; null when nobody would be texted")
    sentences: list[str]


class PreviewOut(BaseModel):
    members: int = Field(description="members looked at (the sample, with a CSV's refused rows)")
    recipients: int = Field(description="of the members looked at, those who would be texted")
    by_reason: dict[str, int]
    complete: bool = Field(description="false when only the first members of a larger audience were read")
    note: str | None = None
    audience_size: int = Field(description="members in the whole audience (iMIS TotalCount, or the rows)")
    sender: str | None
    encodings: dict[str, int] = Field(description="recipients looked at, by encoding (GSM-7, UCS-2)")
    segments_per_recipient: SegmentsPerRecipient | None
    estimate: AudienceEstimateOut | None = Field(description="null without a body")
    refusal: RefusalOut | None = Field(description="why nobody would receive it, in the words send-now uses")
    plan: PlanOut = Field(description="quiet hours and frequency caps at the start, for the recipients looked at")


# -- routes ----------------------------------------------------------------------------------------


@router.post("/csv", status_code=201, summary="Upload a CSV file of members as an audience",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"},
                                **{name: {"type": "string"} for name in _MAPPING_FIELDS}}}}}}})
async def upload_csv(request: Request, org: OrgDep, actor: ActorDep, pool: PoolDep,
                     secrets: SecretsDep) -> UploadSummary:
    limit: int = getattr(request.app.state, "csv_upload_max_bytes", MAX_UPLOAD_BYTES)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:  # refused before a byte is read
        raise FileTooLarge(limit)
    async with received_csv(request, max_file_bytes=limit, field_names=_MAPPING_FIELDS) as received:
        mapping = {_MAPPING_FIELDS[name]: value.strip() for name, value in received.fields.items() if value.strip()}
        try:
            stream = await asyncio.to_thread(CsvStream, received.file, mapping=mapping,
                                             default_country_prefix=org.default_country_prefix)
            async with pool.acquire() as conn:
                upload_id = await upload_storage.store_csv(conn, org.id, received.filename[:255], actor, stream)
        except CsvRefused as exc:
            raise InvalidInput(_field_of(exc, mapping), exc.code, exc.message) from None
    async with pool.acquire() as conn:
        return await _summary(conn, secrets, org.id, org.default_country_prefix,
                              await _upload(conn, org.id, upload_id))


@router.get("/csv/{upload_id}", summary="An uploaded CSV file: rows accepted, and counts by reason")
async def get_upload(upload_id: UUID, org: OrgDep, pool: PoolDep, secrets: SecretsDep) -> UploadSummary:
    async with pool.acquire() as conn:
        return await _summary(conn, secrets, org.id, org.default_country_prefix,
                              await _upload(conn, org.id, upload_id))


@router.get("/csv/{upload_id}/rejections.csv", summary="The rows refused from an uploaded file, and why",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_rejections(upload_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> Response:
    async with transaction(pool) as conn:
        upload = await _upload(conn, org.id, upload_id)
        found = await uploads_db.rejections(conn, upload_id)
        await audit.record(conn, caller, "upload_rejections.exported", "upload", upload_id,
                           detail={"rows": len(found)})
    # The BOM makes Excel read the report as UTF-8; rejection_report makes every cell inert (=, +, -, @).
    return Response("\ufeff" + rejection_report(found, total=upload["rows_rejected"]),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="rejections-{upload_id}.csv"'})


@router.post("/preview", summary="Who an audience would reach and what it would cost, without creating a run")
async def preview(body: PreviewIn, org: OrgDep, pool: PoolDep, web: WebDep, secrets: SecretsDep) -> PreviewOut:
    found = await audience_sample.sample_audience(
        pool, secrets, org.id, org.default_country_prefix, body.audience, body=body.body,
        sender_id=body.sender_id, web=web, limits=audience_sample.PREVIEW)
    figures = found.estimate
    note = None
    if not figures.complete:
        note = (f"only the first {figures.sample:,} of {figures.audience:,} members were read; "
                "the estimate scales them to the whole audience")
    spread = figures.segments_per_recipient
    refused = audience_sample.refusal(found, web.member_cap(org))
    start = body.start_at or datetime.now(UTC)
    plan = await send_planning.plan_preview(pool, org.id, found.rows, found.sender, start=start,
                                            transactional=body.transactional, hold_limit_s=body.hold_limit_s)
    return PreviewOut(
        members=figures.sample, recipients=figures.sample_recipients, by_reason=dict(figures.by_reason),
        complete=figures.complete, note=note, audience_size=figures.audience,
        sender=found.sender.address if found.sender else None, encodings=dict(figures.encodings),
        segments_per_recipient=SegmentsPerRecipient(min=spread.low, median=spread.expected, max=spread.high)
        if spread else None,
        estimate=AudienceEstimateOut(
            recipients=figures.recipients, exact=figures.complete,
            segments=Spread(low=figures.segments.low, expected=figures.segments.expected, high=figures.segments.high),
            cost=MoneySpread(low=str(figures.cost.low), expected=str(figures.cost.expected),
                             high=str(figures.cost.high)),
            unpriced_regions=list(figures.unpriced_regions),
            pumping_protection_may_apply=bool(figures.pumping_protection_regions),
        ) if found.body_known else None,
        refusal=RefusalOut(field=refused.field, code=refused.code, message=refused.message) if refused else None,
        plan=PlanOut(start_at=start, sendable_now=plan.sendable_now,
                     held=[HeldOut(until=g.until, time_zone=g.time_zone, count=g.count, words=g.words)
                           for g in plan.held],
                     outside_window=plan.outside_window, frequency_capped=plan.frequency_capped,
                     finishes_at=plan.finishes_at, sentences=list(plan.sentences)),
    )


# -- helpers ---------------------------------------------------------------------------------------


def _field_of(exc: CsvRefused, mapping: dict[str, str]) -> str:
    """The form field to blame: a named header that is not in the file, else the file itself."""
    if exc.code == "csv_header_missing":
        for form_field, name in _MAPPING_FIELDS.items():
            if name in mapping and f"for {name};" in exc.message:
                return form_field
    return "file"


async def _upload(conn: Any, org_id: UUID, upload_id: UUID, field: str = "upload_id") -> dict[str, Any]:
    upload = await uploads_db.upload(conn, org_id, upload_id)
    if upload is None:
        raise NotFound("csv_upload_not_found", f"{field}: no CSV upload {upload_id}")
    return upload


async def _summary(conn: Any, secrets: SecretStore, org_id: UUID, prefix: str,
                   upload: dict[str, Any]) -> UploadSummary:
    members = await uploads_db.csv_members(conn, upload["id"])
    recipients, excluded = await _count(conn, secrets, org_id, prefix, members)
    fields = {k: upload[k] for k in ("id", "filename", "headers", "mapping", "rows_accepted", "rows_rejected",
                                     "rejections_shown", "created_at")}
    return UploadSummary(**fields, recipients=recipients,
                         by_reason=dict(sorted((Counter(upload["rejected_by_reason"]) + Counter(excluded)).items())),
                         rejections_note=rejections_note(upload["rejections_shown"], upload["rows_rejected"]),
                         rejections_url=f"/api/v1/audiences/csv/{upload['id']}/rejections.csv")


async def _count(conn: Any, secrets: SecretStore, org_id: UUID, prefix: str,
                 members: Sequence[Member]) -> tuple[int, dict[str, int]]:
    """(recipients, excluded by reason) by the run's rules, before a body is known; suppressions of the
    organisation and its default sender (a campaign's own sender is only known at send time)."""
    audience = [AudienceMember(member_id, mobile, {}) for member_id, mobile in members]
    numbers = sorted(rules.candidate_numbers(audience, prefix))
    sender = await uploads_db.campaign_sender(conn, org_id, None)
    suppressed, bad = await uploads_db.excluded_numbers(conn, secrets, org_id, sender.address if sender else None,
                                                        numbers)
    rows = await asyncio.to_thread(rules.classify, audience, None, default_country_prefix=prefix,
                                   suppressed=suppressed, bad_numbers=bad)
    figures = rules.totals(rows)
    return figures.recipients, dict(figures.by_reason)
