"""CSV audience uploads and audience previews.

- ``POST /api/v1/audiences/csv`` (multipart: ``file``, and optionally ``mobile_column``,
  ``member_id_column``, ``first_name_column``, ``last_name_column`` naming headers; other headers are
  guessed, see :mod:`libs.common.csv_audience`): stores the upload, its rows and its rejected-rows report,
  and answers with the counts by reason (201).
- ``GET /api/v1/audiences/csv/{id}``: the same summary; ``GET .../rejections.csv``: the report, every
  cell made inert for spreadsheets.
- ``POST /api/v1/audiences/preview`` ``{"audience": {...}}``: who a campaign audience would reach, by
  reason, without creating a run.

Counts by reason follow the audience service's rules as far as they go without a message body:
``row_*``/``cell_too_long``, ``missing_mobile`` and ``invalid_number`` are rows refused when the file was
read (in the report); ``duplicate_member``, ``opted_out`` (the source's flag or the suppression table) and
``duplicate_number`` are rows kept but excluded at send time. ``render_failed``, ``over_segment_limit``
and ``bad_number`` are only known when a run resolves. Household numbers here count the first member as
the recipient; the run attributes the text to the lowest member id, which changes who, not how many.

Bad input is a problem+json naming the field: 413 for a file over the size limit, 422 for the rest
(``csv_empty``, ``csv_not_utf8``, ``csv_mobile_column_missing``, ...). Another organisation's upload or
list is a 404.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import httpx
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from libs.common.audience import Audience, CsvAudience, IqaAudience, ListAudience
from libs.common.csv_audience import CsvParseResult, CsvRefused, parse_csv, rejection_report
from libs.common.imis_iqa import ImisQueryClient, RetryPolicy
from libs.common.phone import Normalised, normalise
from services.api import uploads_db
from services.api.deps import ActorDep, OrgDep, PoolDep, WebDep
from services.api.errors import InvalidInput, NotFound

router = APIRouter(prefix="/audiences", tags=["audiences"])
# Where uploads arrive (under the API prefix): main.py gives this path the upload's body cap, not the JSON one.
CSV_UPLOAD_PATH: Final = "/audiences/csv"

# 200,000 rows of a typical member export are 15-30 MB; ``app.state.csv_upload_max_bytes`` overrides this.
MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024
MULTIPART_OVERHEAD: Final = 64 * 1024
_MAPPING_FIELDS: Final = {"mobile_column": "mobile", "member_id_column": "member_id",
                          "first_name_column": "first_name", "last_name_column": "last_name"}
# A preview asks iMIS for at most this many pages of 500 (one at a time, as ASI asks): about 10 s on a slow site.
PREVIEW_MAX_PAGES: Final = 20
_PREVIEW_IMIS_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)
_PREVIEW_RETRY: Final = RetryPolicy(attempts=2, base_s=0.5, cap_s=2.0)

Member = tuple[str, str | None, bool]  # member id, mobile as the source has it, the source's opt-out flag


class UploadSummary(BaseModel):
    id: UUID
    filename: str
    headers: list[str]
    mapping: dict[str, str] = Field(description="field -> header, as resolved")
    rows_accepted: int
    rows_rejected: int = Field(description="rows refused when the file was read; see rejections_url")
    recipients: int = Field(description="rows that would be texted (before the message body is known)")
    by_reason: dict[str, int]
    rejections_url: str
    created_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: Audience


class PreviewOut(BaseModel):
    members: int = Field(description="members looked at (for a CSV, every row of the file)")
    recipients: int
    by_reason: dict[str, int]
    complete: bool = Field(description="false when an IQA had more than the pages a preview reads")
    note: str | None = None


# -- routes ----------------------------------------------------------------------------------------


@router.post("/csv", status_code=201, summary="Upload a CSV file of members as an audience",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"},
                                **{name: {"type": "string"} for name in _MAPPING_FIELDS}}}}}}})
async def upload_csv(request: Request, org: OrgDep, actor: ActorDep, pool: PoolDep) -> UploadSummary:
    limit: int = getattr(request.app.state, "csv_upload_max_bytes", MAX_UPLOAD_BYTES)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + MULTIPART_OVERHEAD:  # refused before a byte is read
        raise _too_large(limit)
    async with request.form(max_files=1, max_fields=len(_MAPPING_FIELDS)) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("file", "file_missing", "send the CSV as the multipart field 'file'")
        data = await file.read(limit + 1)
        filename = (file.filename or "")[:255]
        mapping = {_MAPPING_FIELDS[name]: value.strip() for name, value in form.items()
                   if name in _MAPPING_FIELDS and isinstance(value, str) and value.strip()}
    if len(data) > limit:
        raise _too_large(limit)
    try:
        parsed = await asyncio.to_thread(parse_csv, data, mapping=mapping,
                                         default_country_prefix=org.default_country_prefix)
    except CsvRefused as exc:
        raise InvalidInput(_field_of(exc, mapping), exc.code, exc.message) from None
    if not parsed.rows and not parsed.rejections:
        raise InvalidInput("file", "csv_no_rows", "the file has a header row but no members under it")
    async with pool.acquire() as conn:
        saved = await uploads_db.save_upload(conn, org.id, filename, actor, parsed)
        summary = await _summary(conn, org.id, org.default_country_prefix, {
            "id": saved["id"], "filename": filename, "headers": list(parsed.headers), "mapping": parsed.mapping,
            "rows_accepted": len(parsed.rows), "rows_rejected": len(parsed.rejections),
            "created_at": saved["created_at"]}, _members_of(parsed), _reasons(parsed))
    return summary


@router.get("/csv/{upload_id}", summary="An uploaded CSV file: rows accepted, and counts by reason")
async def get_upload(upload_id: UUID, org: OrgDep, pool: PoolDep) -> UploadSummary:
    async with pool.acquire() as conn:
        upload = await _upload(conn, org.id, upload_id)
        members = await uploads_db.csv_members(conn, upload_id)
        refused = await uploads_db.rejection_counts(conn, upload_id)
        return await _summary(conn, org.id, org.default_country_prefix, upload,
                              [(m, p, False) for m, p in members], refused)


@router.get("/csv/{upload_id}/rejections.csv", summary="The rows refused from an uploaded file, and why",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_rejections(upload_id: UUID, org: OrgDep, pool: PoolDep) -> Response:
    async with pool.acquire() as conn:
        await _upload(conn, org.id, upload_id)
        found = await uploads_db.rejections(conn, upload_id)
    # The BOM makes Excel read the report as UTF-8; rejection_report makes every cell inert (=, +, -, @).
    return Response("\ufeff" + rejection_report(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="rejections-{upload_id}.csv"'})


@router.post("/preview", summary="Who an audience would reach, by reason, without creating a run")
async def preview(body: PreviewIn, org: OrgDep, pool: PoolDep, web: WebDep) -> PreviewOut:
    audience = body.audience
    refused: dict[str, int] = {}
    complete, note = True, None
    if isinstance(audience, IqaAudience):
        async with pool.acquire() as conn:
            source = await uploads_db.imis_source(conn, org.id)
        members, complete = await _iqa_members(source, web.imis_base_url, audience)  # no connection held meanwhile
        if not complete:
            note = f"only the first {PREVIEW_MAX_PAGES} pages ({len(members)} members) were read; the run reads all"
    async with pool.acquire() as conn:
        if isinstance(audience, CsvAudience):
            await _upload(conn, org.id, audience.upload_id, field="audience.upload_id")
            members = [(m, p, False) for m, p in await uploads_db.csv_members(conn, audience.upload_id)]
            refused = await uploads_db.rejection_counts(conn, audience.upload_id)
        elif isinstance(audience, ListAudience):
            entries = await uploads_db.list_members(conn, org.id, audience.list_id)
            if entries is None:
                raise NotFound("list_not_found", f"audience.list_id: no member list {audience.list_id}")
            members = [(m, p, False) for m, p in entries]
        recipients, by_reason = await _count(conn, org.id, org.default_country_prefix, members)
    merged = Counter(refused) + Counter(by_reason)
    return PreviewOut(members=len(members) + sum(refused.values()), recipients=recipients,
                      by_reason=dict(sorted(merged.items())), complete=complete, note=note)


# -- helpers ---------------------------------------------------------------------------------------


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"file: the upload is over {limit // (1024 * 1024) or limit} "
                              f"{'MB' if limit >= 1024 * 1024 else 'bytes'}; split it into smaller files")


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


def _members_of(parsed: CsvParseResult) -> list[Member]:
    return [(r.member_id, r.mobile, False) for r in parsed.rows]


def _reasons(parsed: CsvParseResult) -> dict[str, int]:
    return dict(Counter(r.reason for r in parsed.rejections))


async def _summary(conn: Any, org_id: UUID, prefix: str, upload: dict[str, Any], members: list[Member],
                   refused: dict[str, int]) -> UploadSummary:
    recipients, excluded = await _count(conn, org_id, prefix, members)
    fields = {k: upload[k] for k in ("id", "filename", "headers", "mapping", "rows_accepted", "rows_rejected",
                                     "created_at")}
    return UploadSummary(**fields, recipients=recipients,
                         by_reason=dict(sorted((Counter(refused) + Counter(excluded)).items())),
                         rejections_url=f"/api/v1/audiences/csv/{upload['id']}/rejections.csv")


async def _count(conn: Any, org_id: UUID, prefix: str, members: Sequence[Member]) -> tuple[int, dict[str, int]]:
    verdicts = await asyncio.to_thread(number_verdicts, members, prefix)
    numbers = sorted({v for v in verdicts if v.startswith("+")})
    suppressed = await uploads_db.suppressed(conn, org_id, numbers) if numbers else set()
    return count_by_reason(verdicts, suppressed)


async def _iqa_members(
    source: uploads_db.ImisSource | None, default_base_url: str | None, audience: IqaAudience
) -> tuple[list[Member], bool]:
    # A link without a base_url means the deployment's iMIS (TEXTPULSE_IMIS_BASE_URL), as a run reads it
    # (services/audience/handlers.py); deploy/demo.py links its organisations that way.
    base_url = (source.base_url or default_base_url) if source is not None else None
    if source is None or base_url is None:
        raise InvalidInput("audience.query", "imis_account_missing",
                           "the organisation has no iMIS site set up (Settings > iMIS)")
    id_col, mobile_col = source.member_id_column.lower(), source.mobile_column.lower()
    opt_col = source.opt_out_column.lower() if source.opt_out_column else None
    members: list[Member] = []
    pages = 0
    async with httpx.AsyncClient(timeout=_PREVIEW_IMIS_TIMEOUT) as http:
        client = ImisQueryClient(http, base_url, source.username, source.password, retry=_PREVIEW_RETRY)
        async for page in client.pages(audience.query, audience.parameters):
            for row in page.rows:
                cells = {k.lower(): v for k, v in row.items()}
                members.append((_text(cells.get(id_col)) or _text(cells.get("$partyid")) or "",
                                _text(cells.get(mobile_col)), opt_col is not None and _true(cells.get(opt_col))))
            pages += 1
            if pages >= PREVIEW_MAX_PAGES:
                complete = page.total is not None and len(members) >= page.total
                return members, complete
    return members, True


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _true(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in {"true", "yes", "y", "1"}


# -- counting (pure) -------------------------------------------------------------------------------


def number_verdicts(members: Iterable[Member], prefix: str) -> list[str]:
    """Per member, in order: its E.164 number, or the first reason it cannot have one
    (``duplicate_member``, ``opted_out``, ``missing_mobile``, ``invalid_number``), as the run checks them."""
    seen: set[str] = set()
    out: list[str] = []
    for member_id, mobile, opted_out in members:
        if member_id and member_id in seen:
            out.append("duplicate_member")
            continue
        seen.add(member_id)
        if opted_out:
            out.append("opted_out")
        elif not mobile or not mobile.strip():
            out.append("missing_mobile")
        else:
            number = normalise(mobile, prefix)
            out.append(number.e164 if isinstance(number, Normalised) else "invalid_number")
    return out


def count_by_reason(verdicts: Iterable[str], suppressed: set[str]) -> tuple[int, dict[str, int]]:
    """(recipients, excluded by reason): a suppressed number is ``opted_out``, a repeated one ``duplicate_number``.

    >>> count_by_reason(["+14155550100", "+14155550100", "missing_mobile", "+14155550101"], {"+14155550101"})
    (1, {'duplicate_number': 1, 'missing_mobile': 1, 'opted_out': 1})
    """
    reasons: Counter[str] = Counter()
    numbers: set[str] = set()
    for verdict in verdicts:
        if not verdict.startswith("+"):
            reasons[verdict] += 1
        elif verdict in suppressed:
            reasons["opted_out"] += 1
        elif verdict in numbers:
            reasons["duplicate_number"] += 1
        else:
            numbers.add(verdict)
    return len(numbers), dict(sorted(reasons.items()))
