"""``/api/v1/campaigns``: drafts, schedules, send-now, pause / resume / cancel / archive, duplicates.

Every change runs in one transaction that first locks the campaign (``FOR UPDATE``), asks
``libs.common.campaign_states`` whether the move is allowed, then writes the campaign, its runs and an
audit row: nothing is half-saved, and a refused move is a 409 naming the current state. The POSTs that
start a send (schedule, send-now) require ``Idempotency-Key`` (400 ``idempotency_key_missing`` without it):
the key is stored with the response in that same transaction, so a retried request gets the first answer and
never a second run.

Sending is the scheduler's job: schedule stores the schedule and its next occurrence, send-now inserts a
run due now and the campaign is sending from that moment (so staff can pause or cancel it at once); the
scheduler publishes either within a second (services/scheduler/loop.py). A run copies the campaign's
content when it is created: an edit afterwards applies to the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from libs.common import campaign_states as states
from libs.common import run_reasons, schedules
from libs.common.campaign_states import CampaignNotEditable, CampaignState
from libs.common.db import Connection, transaction
from libs.common.errors import RetryableError
from libs.common.links import LinkError, check_links
from libs.common.merge import MergeError, compile_template
from libs.common.secret_store import SecretStore
from libs.common.segments import InvalidBody, count_segments
from services.api import approval, audit, db, lists_db, uploads_db
from services.api.audit import CallerDep
from services.api.deps import (
    ActorDep,
    IdempotencyKey,
    Organisation,
    OrgDep,
    PageOffset,
    PoolDep,
    PrincipalDep,
    WebConfig,
    WebDep,
    get_secrets,
)
from services.api.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from services.api.schemas import (
    ApproveIn,
    CampaignCreate,
    CampaignOut,
    CampaignPage,
    CampaignUpdate,
    Occurrence,
    Occurrences,
    RejectIn,
    RunOut,
    ScheduleIn,
    SendStarted,
)
from services.api.send_check import check_sendable

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

# Outside this range a limit is allowed but probably a typo (issue 6); the account's cap applies on top.
USUAL_SEGMENT_LIMITS = (15_000, 30_000)


@router.post("", status_code=201, summary="Create a draft")
async def create_campaign(
    body: CampaignCreate, org: OrgDep, actor: ActorDep, caller: CallerDep, pool: PoolDep
) -> CampaignOut:
    fields = body.model_dump()
    if fields["segment_limit"] is None:
        fields["segment_limit"] = org.campaign_segment_limit
    _check_segment_limit(org, fields["segment_limit"])
    async with transaction(pool) as conn:
        await _check_content(conn, org, fields)
        campaign_id = await db.insert_campaign(conn, org.id, fields, actor)
        await audit.record_campaign(conn, caller, "created", campaign_id, to_state=CampaignState.DRAFT,
                                    detail={"name": fields["name"]})
        return await _campaign_out(conn, org, campaign_id)


@router.get("", summary="List campaigns, newest first")
async def list_campaigns(
    org: OrgDep,
    pool: PoolDep,
    state: Annotated[list[CampaignState] | None, Query(description="repeat to match any of several")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> CampaignPage:
    async with pool.acquire() as conn:
        rows, total = await db.list_campaigns(conn, org.id, [s.value for s in state or []], limit, offset)
    return CampaignPage(items=[_to_out(r, org) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/schedule-preview", summary="The next occurrences of a schedule, without saving it")
async def preview_schedule(
    body: ScheduleIn, org: OrgDep, count: Annotated[int, Query(ge=1, le=50)] = 5
) -> Occurrences:
    now = datetime.now(UTC)
    schedule = await _build_schedule(body, org.time_zone, now)
    return _occurrences(schedule, now, count)


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: UUID, org: OrgDep, pool: PoolDep) -> CampaignOut:
    async with pool.acquire() as conn:
        return await _campaign_out(conn, org, campaign_id)


@router.patch("/{campaign_id}", summary="Edit (draft, scheduled, paused or not sent): applies to the next run")
async def update_campaign(
    campaign_id: UUID, body: CampaignUpdate, org: OrgDep, actor: ActorDep, caller: CallerDep, pool: PoolDep
) -> CampaignOut:
    changes = body.model_dump(exclude_unset=True)
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        states.ensure_editable(locked["state"])
        if "segment_limit" in changes:
            _check_segment_limit(org, changes["segment_limit"])
        current = await db.get_campaign(conn, org.id, campaign_id) or {}
        fields = current | changes
        reviewed = approval.changes_pinned(current, fields) and _under_approval(org, current)
        if reviewed and locked["state"] == CampaignState.PAUSED:
            raise CampaignNotEditable(locked["state"], "changed in its wording, audience or sender while approval "
                                      "is required (resume or cancel it first)",
                                      states.EDITABLE - {CampaignState.PAUSED})
        await _check_content(conn, org, fields, for_send=locked["state"] != CampaignState.DRAFT)
        await db.update_campaign(conn, campaign_id, fields, actor)
        await audit.record_campaign(conn, caller, "edited", campaign_id, detail={"fields": sorted(changes)})
        if approval.changes_pinned(current, fields):
            await db.clear_approval(conn, campaign_id, actor)
        if reviewed:
            await _back_to_review(conn, caller, campaign_id, locked["state"])
        return await _campaign_out(conn, org, campaign_id)


@router.delete("/{campaign_id}", status_code=204, summary="Delete a draft")
async def delete_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> Response:
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        if locked["state"] != CampaignState.DRAFT:
            raise CampaignNotEditable(locked["state"], "deleted", frozenset({CampaignState.DRAFT}))
        draft = await db.get_campaign(conn, org.id, campaign_id) or {}
        await db.delete_draft(conn, campaign_id)
        # The campaign's own history goes with it; the organisation's log keeps what was deleted.
        await audit.record(conn, caller, "campaign.deleted", "campaign", campaign_id,
                           before={"name": draft.get("name"), "state": locked["state"]})
    return Response(status_code=204)


@router.post("/{campaign_id}/schedule", summary="Schedule at a local time or on an RRULE (or reschedule)")
async def schedule_campaign(
    campaign_id: UUID, body: ScheduleIn, request: Request, org: OrgDep, actor: ActorDep, caller: CallerDep,
    pool: PoolDep, web: WebDep, idempotency_key: IdempotencyKey,
) -> CampaignOut:
    now = datetime.now(UTC)
    schedule = await _build_schedule(body, org.time_zone, now)
    warnings = await _check_sendable(pool, get_secrets(request), org, web, campaign_id, idempotency_key)

    async def act(conn: Connection) -> tuple[int, BaseModel]:
        locked = await _lock(conn, org, campaign_id)
        target = states.schedule(locked["state"])
        await _check_approved_content(conn, org, campaign_id)
        await db.cancel_unpublished_runs(conn, campaign_id, run_reasons.rescheduled("a new schedule"))
        first = schedules.next_occurrence(schedule, after=now, inclusive=True)
        await db.set_schedule(conn, campaign_id, schedules.to_json(schedule), first, target, actor)
        await audit.record_campaign(conn, caller, "scheduled", campaign_id, from_state=locked["state"],
                                    to_state=target, detail={"schedule": schedules.to_json(schedule), "first": first})
        out = await _campaign_out(conn, org, campaign_id)
        out.warnings.extend(warnings)
        return 200, out

    return await _idempotently(pool, org, idempotency_key, request, body, act)  # type: ignore[return-value]


@router.post("/{campaign_id}/send-now", status_code=202, summary="Send now: one run, due immediately")
async def send_now(
    campaign_id: UUID, request: Request, org: OrgDep, actor: ActorDep, caller: CallerDep, pool: PoolDep,
    web: WebDep, idempotency_key: IdempotencyKey,
) -> SendStarted:
    now = datetime.now(UTC)
    warnings = await _check_sendable(pool, get_secrets(request), org, web, campaign_id, idempotency_key)

    async def act(conn: Connection) -> tuple[int, BaseModel]:
        locked = await _lock(conn, org, campaign_id)
        target = states.send_now(locked["state"])
        await _check_approved_content(conn, org, campaign_id)
        await db.cancel_unpublished_runs(conn, campaign_id, run_reasons.rescheduled("send-now"))
        await db.set_schedule(conn, campaign_id, schedules.to_json(schedules.send_now(now)), None, target, actor)
        run_id = await db.insert_send_now_run(conn, org.id, campaign_id, now)
        await audit.record_campaign(conn, caller, "sent_now", campaign_id, from_state=locked["state"],
                                    to_state=target, run_id=run_id)
        run = RunOut.model_validate(await db.get_run(conn, run_id))
        return 202, SendStarted(campaign=await _campaign_out(conn, org, campaign_id), run=run, warnings=warnings)

    return await _idempotently(pool, org, idempotency_key, request, None, act)  # type: ignore[return-value]


@router.post("/{campaign_id}/submit", summary="Submit a draft for approval")
async def submit_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> CampaignOut:
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        target = states.submit(locked["state"])
        await _check_content(conn, org, await _get(conn, org, campaign_id), for_send=True)
        await db.set_state(conn, campaign_id, target, caller.actor)
        await db.set_review_comment(conn, campaign_id, None)
        await audit.record_campaign(conn, caller, "submitted", campaign_id, from_state=locked["state"],
                                    to_state=target)
        return await _campaign_out(conn, org, campaign_id)


@router.post("/{campaign_id}/approve", summary="Approve a campaign in review (not its own authors)")
async def approve_campaign(
    campaign_id: UUID, body: ApproveIn, org: OrgDep, principal: PrincipalDep, caller: CallerDep, pool: PoolDep
) -> CampaignOut:
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        campaign = await _get(conn, org, campaign_id)
        approval.ensure_may_approve(principal, campaign)
        target = states.approve(locked["state"])
        pinned = approval.fingerprint(campaign)
        if body.fingerprint is not None and body.fingerprint != pinned:
            raise Conflict("campaign_changed", "the campaign changed since you read it: read it again before approving")
        await db.set_state(conn, campaign_id, target, caller.actor)
        await db.pin_approval(conn, campaign_id, pinned, caller.actor)
        await audit.record_campaign(conn, caller, "approved", campaign_id, from_state=locked["state"],
                                    to_state=target, detail={"fingerprint": pinned})
        return await _campaign_out(conn, org, campaign_id)


@router.post("/{campaign_id}/reject", summary="Reject a campaign in review, with a comment for its authors")
async def reject_campaign(
    campaign_id: UUID, body: RejectIn, org: OrgDep, principal: PrincipalDep, caller: CallerDep, pool: PoolDep
) -> CampaignOut:
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        approval.ensure_may_approve(principal, await _get(conn, org, campaign_id))
        target = states.reject(locked["state"])
        await db.set_state(conn, campaign_id, target, caller.actor)
        await db.set_review_comment(conn, campaign_id, body.comment)
        await audit.record_campaign(conn, caller, "rejected", campaign_id, from_state=locked["state"],
                                    to_state=target, detail={"comment": body.comment})
        return await _campaign_out(conn, org, campaign_id)


@router.post("/{campaign_id}/pause", summary="Pause a sending campaign")
async def pause_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> CampaignOut:
    return await _move(pool, org, caller, campaign_id, "paused",
                       lambda current: states.transition(current, CampaignState.PAUSED), db.pause_runs)


@router.post("/{campaign_id}/resume", summary="Resume a paused campaign")
async def resume_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> CampaignOut:
    return await _move(pool, org, caller, campaign_id, "resumed", states.resume, db.resume_runs)


@router.post("/{campaign_id}/cancel", summary="Cancel: nothing more is sent")
async def cancel_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> CampaignOut:
    async def stop_runs(conn: Connection, campaign: UUID) -> None:
        await db.cancel_open_runs(conn, campaign, run_reasons.campaign_cancelled())
        await db.clear_next_occurrence(conn, campaign)

    return await _move(pool, org, caller, campaign_id, "cancelled",
                       lambda current: states.transition(current, CampaignState.CANCELLED), stop_runs)


@router.post("/{campaign_id}/archive", summary="Archive a completed or cancelled campaign")
async def archive_campaign(campaign_id: UUID, org: OrgDep, caller: CallerDep, pool: PoolDep) -> CampaignOut:
    return await _move(pool, org, caller, campaign_id, "archived",
                       lambda current: states.transition(current, CampaignState.ARCHIVED), None)


@router.post("/{campaign_id}/duplicate", status_code=201, summary="Copy into a new draft")
async def duplicate_campaign(
    campaign_id: UUID, org: OrgDep, actor: ActorDep, caller: CallerDep, pool: PoolDep
) -> CampaignOut:
    async with transaction(pool) as conn:
        copy_id = await db.duplicate_campaign(conn, org.id, campaign_id, actor)
        if copy_id is None:
            raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
        await audit.record_campaign(conn, caller, "duplicated", copy_id, to_state=CampaignState.DRAFT,
                                    detail={"from": str(campaign_id)})
        return await _campaign_out(conn, org, copy_id)


@router.get("/{campaign_id}/occurrences", summary="The next occurrences of the campaign's schedule")
async def next_occurrences(
    campaign_id: UUID, org: OrgDep, pool: PoolDep, count: Annotated[int, Query(ge=1, le=50)] = 5
) -> Occurrences:
    async with pool.acquire() as conn:
        campaign = await _get(conn, org, campaign_id)
    if campaign["state"] in states.FINAL:
        return Occurrences(time_zone=None, occurrences=[])
    return _occurrences(schedules.from_json(campaign["schedule"]), datetime.now(UTC), count)


@router.get("/{campaign_id}/runs", summary="The campaign's runs, newest first")
async def list_runs(
    campaign_id: UUID, org: OrgDep, pool: PoolDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[RunOut]:
    async with pool.acquire() as conn:
        await _get(conn, org, campaign_id)
        return [RunOut.model_validate(r) for r in await db.list_runs(conn, campaign_id, limit)]


# ---------------------------------------------------------------------------------------------


async def _move(
    pool: asyncpg.Pool, org: Organisation, caller: audit.Caller, campaign_id: UUID, action: str,
    decide: Callable[[str], CampaignState],
    runs: Callable[[Connection, UUID], Awaitable[None]] | None,
) -> CampaignOut:
    """Lock, let the state machine ``decide``, write the state, adjust the runs, audit: one transaction."""
    async with transaction(pool) as conn:
        locked = await _lock(conn, org, campaign_id)
        target = decide(locked["state"])
        await db.set_state(conn, campaign_id, target, caller.actor)
        if runs is not None:
            await runs(conn, campaign_id)
        await audit.record_campaign(conn, caller, action, campaign_id, from_state=locked["state"], to_state=target)
        return await _campaign_out(conn, org, campaign_id)


def _under_approval(org: Organisation, campaign: dict[str, Any]) -> bool:
    """Whether a change of the pinned content needs a new approval: the organisation requires one, or the
    campaign was approved anyway."""
    return org.require_approval or campaign.get("approval_fingerprint") is not None


async def _back_to_review(conn: Connection, caller: audit.Caller, campaign_id: UUID, current: str) -> None:
    """The approved content changed: back to review; a scheduled one's next run waits for the new approval."""
    target = states.after_content_change(current)
    if target is None:
        return
    await db.set_state(conn, campaign_id, target, caller.actor)
    if current == CampaignState.SCHEDULED:
        await db.cancel_unpublished_runs(conn, campaign_id, run_reasons.rescheduled("a change awaiting approval"))
        await db.clear_next_occurrence(conn, campaign_id)
    await audit.record_campaign(conn, caller, "returned_to_review", campaign_id, from_state=current, to_state=target)


async def _check_approved_content(conn: Connection, org: Organisation, campaign_id: UUID) -> None:
    """Before a schedule or a send: the content can be sent and, where approval is required, is what was approved."""
    campaign = await _get(conn, org, campaign_id)
    await _check_content(conn, org, campaign, for_send=True)
    if org.require_approval:
        approval.ensure_approved(campaign)


async def _idempotently(
    pool: asyncpg.Pool, org: Organisation, key: str, request: Request, body: BaseModel | None,
    act: Callable[[Connection], Awaitable[tuple[int, BaseModel]]],
) -> JSONResponse:
    """Run ``act`` once per Idempotency-Key: a repeat of the same request replays the stored response."""
    payload = body.model_dump_json() if body is not None else ""
    request_hash = hashlib.sha256(f"{request.method} {request.url.path}\n{payload}".encode()).hexdigest()
    async with transaction(pool) as conn:
        if not await db.claim_idempotency_key(conn, org.id, key, request_hash):
            stored = await db.get_idempotency_key(conn, org.id, key)
            if stored is None or stored["status_code"] is None:
                raise RetryableError("idempotency_key_busy", "a request with this Idempotency-Key is in progress")
            if stored["request_hash"] != request_hash:
                raise IdempotencyKeyReused(
                    "idempotency_key_reused", "this Idempotency-Key was used for a different request"
                )
            return JSONResponse(stored["response"], status_code=stored["status_code"],
                                headers={"Idempotent-Replayed": "true"})
        status, result = await act(conn)
        response = result.model_dump(mode="json")
        await db.save_idempotent_response(conn, org.id, key, status, response)
    return JSONResponse(response, status_code=status)


async def _build_schedule(body: ScheduleIn, time_zone: str, now: datetime) -> schedules.Schedule:
    if body.at is not None and (body.rrule is not None or body.start is not None):
        raise InvalidInput("at", "schedule_ambiguous", "give at, or rrule with start, not both")
    if body.at is not None:
        return schedules.send_at(body.at, time_zone, now=now)
    if body.rrule is None:
        raise InvalidInput("at", "schedule_missing", "give at (a local date and time), or rrule with start")
    if body.start is None:
        raise InvalidInput("start", "start_missing", "a recurring schedule needs the date and time it starts")
    # Expanding a rule that never fires takes up to half a second of CPU: keep it off the event loop.
    return await asyncio.to_thread(schedules.recurring, body.rrule, body.start, time_zone, now=now)


def _occurrences(schedule: schedules.Schedule | None, now: datetime, count: int) -> Occurrences:
    if schedule is None or isinstance(schedule, schedules.SendNow):
        return Occurrences(time_zone=None, occurrences=[])
    found = schedules.occurrences(schedule, after=now, count=count, inclusive=True)
    return Occurrences(time_zone=schedule.time_zone, occurrences=[
        Occurrence(at=t, local=schedules.to_local(t, schedule.time_zone)) for t in found
    ])


async def _check_sendable(pool: asyncpg.Pool, secrets: SecretStore, org: Organisation, web: WebConfig,
                          campaign_id: UUID, idempotency_key: str) -> list[str]:
    """Refuse up front a campaign nobody could receive (services/api/send_check.py), outside the send's
    transaction; a request whose Idempotency-Key already has an answer is replayed unchecked."""
    async with pool.acquire() as conn:
        if await db.get_idempotency_key(conn, org.id, idempotency_key):
            return []
        campaign = await db.get_campaign(conn, org.id, campaign_id)
    if campaign is None:
        return []  # the transaction answers 404
    return await check_sendable(pool, secrets, org, campaign, web, web.member_cap(org))


def _check_segment_limit(org: Organisation, limit: int) -> None:
    """The organisation's per-campaign limit is a ceiling: a campaign may set a lower one, never a higher."""
    if limit > org.campaign_segment_limit:
        raise InvalidInput("segment_limit", "segment_limit_over_organisation",
                           f"{limit:,} is over the organisation's limit of {org.campaign_segment_limit:,} segments "
                           "per campaign; an admin can raise that limit in Settings")


async def _check_content(
    conn: Connection, org: Organisation, fields: dict[str, Any], *, for_send: bool = False
) -> None:
    """Refuse a body, sender or audience that could not be sent, naming the field. A draft may be
    incomplete (empty body, no audience); what it has must still be valid."""
    body = fields.get("body") or ""
    if body:
        try:
            compile_template(body)
            if fields.get("track_links"):
                check_links(body)
            count_segments(body)
        except (MergeError, InvalidBody, LinkError) as exc:
            raise InvalidInput("body", exc.code, exc.message) from None
    elif for_send:
        raise InvalidInput("body", "body_empty", "the message body is empty")
    sender_id = fields.get("sender_id")
    if sender_id is not None and not await db.sender_belongs_to(conn, org.id, sender_id):
        raise InvalidInput("sender_id", "sender_not_owned", f"{sender_id} is not one of this account's senders")
    if for_send and sender_id is None and not await db.has_default_sender(conn, org.id):
        raise InvalidInput("sender_id", "sender_missing", "choose a sender: the organisation has no default")
    if for_send and not fields.get("audience"):
        raise InvalidInput("audience", "audience_missing", "choose who receives it")
    await _check_audience_source(conn, org, fields.get("audience"))


async def _check_audience_source(conn: Connection, org: Organisation, audience: dict[str, Any] | None) -> None:
    """A list or upload audience must name one of the organisation's own."""
    audience = audience or {}
    kind, list_id, upload_id = audience.get("kind"), audience.get("list_id"), audience.get("upload_id")
    if kind == "list" and (list_id is None or await lists_db.get_list(conn, org.id, list_id) is None):
        raise InvalidInput("audience.list_id", "list_not_found", "no such member list in this organisation")
    if kind == "csv" and (upload_id is None or await uploads_db.upload(conn, org.id, upload_id) is None):
        raise InvalidInput("audience.upload_id", "csv_upload_not_found", "no such CSV upload in this organisation")


async def _lock(conn: Connection, org: Organisation, campaign_id: UUID) -> dict[str, Any]:
    locked = await db.lock_campaign(conn, org.id, campaign_id)
    if locked is None:
        raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
    return locked


async def _get(conn: Connection, org: Organisation, campaign_id: UUID) -> dict[str, Any]:
    row = await db.get_campaign(conn, org.id, campaign_id)
    if row is None:
        raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
    return row


async def _campaign_out(conn: Connection, org: Organisation, campaign_id: UUID) -> CampaignOut:
    return _to_out(await _get(conn, org, campaign_id), org)


def _to_out(row: dict[str, Any], org: Organisation) -> CampaignOut:
    limit, cap = row["segment_limit"], org.account_max_segments
    warnings = []
    low, high = USUAL_SEGMENT_LIMITS
    if not low <= limit <= high:
        warnings.append(f"segment_limit {limit:,} is outside the usual {low:,}-{high:,}")
    if cap is not None and cap < limit:
        warnings.append(f"the account caps every campaign at {cap:,} segments")
    return CampaignOut(
        **row,
        effective_segment_limit=min(limit, cap) if cap is not None else limit,
        content_fingerprint=approval.fingerprint(row),
        actions=states.available_actions(row["state"], approval_required=org.require_approval),
        warnings=warnings,
    )
