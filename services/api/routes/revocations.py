"""``/api/v1/revocations``: the review queue of doubtful replies (staff look, admins decide), and revocations
admins record from another channel (an e-mail, a phone call), with their evidence.

A reply the opt-out service reads as a possible revocation (services/optout/revocation.py) waits here; its
number is held meanwhile (a suppression of source ``review_hold``, which every send honours).

- ``revocation``: applied as a STOP is, in one transaction: the suppression (the hold becomes source
  ``review``, and the sender replied to is suppressed too), ``consent_history`` rows, ConsentChanged events,
  iMIS write-back jobs, and the organisation's confirmation text if it enabled one. If the member opted back
  in after the reply, the decision is recorded and nothing is suppressed (``superseded``).
- ``not_revocation``: the hold is lifted (unless another reply of the number still waits); nothing else
  changes.

A decided review cannot be decided again (409 ``review_decided``). A manual revocation suppresses the number
organisation-wide (source ``manual``) and is written back to iMIS; it gets no confirmation text. Every
decision and revocation is in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common import revocation_confirmations
from libs.common.db import Connection, Queries, transaction
from libs.common.events import ConsentChanged
from libs.common.topics import CONSENT
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, Organisation, OrgDep, PageOffset, PoolDep
from services.api.errors import Conflict, NotFound
from services.api.phone_input import number_input
from services.api.routes import suppressions

QUERIES: Final = Queries.load(Path(__file__).parents[1] / "revocations.sql")

router = APIRouter(prefix="/revocations", tags=["revocations"])

Channel = Literal["email", "phone_call", "letter", "in_person", "other"]
CHANNEL_NAMES: Final[dict[str, str]] = {"email": "e-mail", "phone_call": "phone call", "letter": "letter",
                                        "in_person": "in person", "other": "another channel"}
ReviewState = Literal["pending", "revocation", "not_revocation"]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Evidence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class ReviewOut(BaseModel):
    id: int
    phone: str | None = Field(description="null once the member is erased")
    body: str = Field(description="the member's reply ('' once the reply retention has passed)")
    to_number: str = Field(description="the number the member wrote to")
    scope: str | None
    matched: str = Field(description="the phrase that made the reply doubtful")
    language: str
    state: ReviewState
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    received_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    total: int
    limit: int
    offset: int


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["revocation", "not_revocation"]
    note: Note | None = None


class DecisionOut(BaseModel):
    review_id: int
    decision: Literal["revocation", "not_revocation"]
    phone: str
    changed_scopes: list[str] = Field(description="scopes now revoked (revocation) or released (not_revocation)")
    superseded: bool = Field(description="the member opted back in after the reply: nothing was suppressed")
    confirmation_queued: bool


class ManualRevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"phone": "(415) 555-0134", "channel": "email", "evidence": "E-mail of 2026-11-30 'Please stop the texts'"}]})

    phone: Phone
    channel: Channel
    evidence: Evidence = Field(description="what shows the revocation: the e-mail's date and words, the call's note")


class ManualRevocationOut(BaseModel):
    phone: str
    changed: bool = Field(description="false when the number was revoked already")


@router.get("/reviews", summary="Doubtful replies waiting for a decision (oldest first), or decided ones")
async def list_reviews(
    org: OrgDep, pool: PoolDep,
    state: Annotated[list[ReviewState] | None, Query(description="default: pending")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> ReviewPage:
    async with pool.acquire() as conn:
        rows = await QUERIES.fetch(conn, "list-reviews", org_id=org.id, states=state or ["pending"], limit=limit,
                                   offset=offset)
    items = [ReviewOut(**{k: v for k, v in dict(r).items() if k != "total"}) for r in rows]
    return ReviewPage(items=items, total=rows[0]["total"] if rows else 0, limit=limit, offset=offset)


@router.post("/reviews/{review_id}/decision", summary="Decide whether a doubtful reply revoked consent (admins)")
async def decide_review(review_id: int, body: DecisionIn, admin: AdminDep, caller: CallerDep,
                        pool: PoolDep) -> DecisionOut:
    org, actor = admin.org, admin.actor
    async with transaction(pool) as conn:
        review = await QUERIES.fetchrow(conn, "lock-review", org_id=org.id, review_id=review_id)
        if review is None:
            raise NotFound("review_not_found", f"review {review_id} does not exist")
        if review["state"] != "pending":
            raise Conflict("review_decided", f"review {review_id} was decided already: {review['state']}")
        if review["phone"] is None:
            raise Conflict("member_erased", f"the member of review {review_id} was erased")
        phone = review["phone"]
        superseded, queued, changed = False, False, []
        if body.decision == "revocation":
            superseded = bool(await QUERIES.fetchval(conn, "opted-in-since", org_id=org.id, phone=phone,
                                                     since=review["received_at"]))
            if not superseded:
                changed = await _revoke_reply(conn, org, actor, review, body.note)
                queued = bool(await revocation_confirmations.queue(conn, [(org.id, review["message_sid"])]))
        elif await QUERIES.fetchval(conn, "release-hold", org_id=org.id, phone=phone, review_id=review_id):
            changed = [""]
        await QUERIES.execute(conn, "decide-review", org_id=org.id, review_id=review_id, state=body.decision,
                              decided_by=actor, note=body.note or None)
        await audit.record(conn, caller, "revocation.reviewed", "revocation_review", review_id,
                           before={"state": "pending"}, after={"state": body.decision, "changed_scopes": changed},
                           detail={"note": body.note, "superseded": superseded})
    return DecisionOut(review_id=review_id, decision=body.decision, phone=phone, changed_scopes=changed,
                       superseded=superseded, confirmation_queued=queued)


@router.post("", summary="Record a revocation received another way (admins), with its evidence")
async def record_revocation(body: ManualRevocationIn, admin: AdminDep, caller: CallerDep,
                            pool: PoolDep) -> ManualRevocationOut:
    org, actor = admin.org, admin.actor
    phone = number_input("phone", body.phone, org.default_country_prefix)
    reason = f"Revocation by {CHANNEL_NAMES[body.channel]}"
    async with transaction(pool) as conn:
        changed = bool(await QUERIES.fetchval(conn, "revoke", org_id=org.id, phone=phone, scope="", source="manual",
                                              reason=reason))
        row = await QUERIES.fetchrow(conn, "record-revocation", org_id=org.id, phone=phone, scope="", source="manual",
                                     keyword=None, body=None, message_sid=None, actor=actor, reason=reason,
                                     changed=changed, channel=body.channel, evidence=body.evidence)
        assert row is not None
        if changed:
            await _announce(conn, org, phone, "", None)
            await _write_back(conn, org, phone, f"{reason}, recorded by {actor}: {body.evidence}", row)
        await audit.record(conn, caller, "revocation.recorded", "phone", phone, after={"changed": changed},
                           detail={"channel": body.channel, "evidence": body.evidence})
    return ManualRevocationOut(phone=phone, changed=changed)


async def _revoke_reply(conn: Connection, org: Organisation, actor: str, r: asyncpg.Record,
                        note: str | None) -> list[str]:
    """Suppress organisation-wide and for the sender replied to; history, events and iMIS jobs as a STOP."""
    reason = f"Reply decided a revocation by {actor}" + (f": {note}" if note else "")
    scopes = [""] + ([r["scope"]] if r["scope"] else [])
    changed = []
    for scope in scopes:
        was_new = bool(await QUERIES.fetchval(conn, "revoke", org_id=org.id, phone=r["phone"], scope=scope,
                                              source="review", reason=reason))
        row = await QUERIES.fetchrow(conn, "record-revocation", org_id=org.id, phone=r["phone"], scope=scope,
                                     source="review", keyword=r["matched"], body=r["body"],
                                     message_sid=r["message_sid"], actor=actor, reason=note or None,
                                     changed=was_new, channel=None, evidence=None)
        assert row is not None
        if not was_new:
            continue
        changed.append(scope)
        await _announce(conn, org, r["phone"], scope, r["message_sid"])
        if scope == "":
            await _write_back(conn, org, r["phone"], f"Reply revoking consent ('{r['matched']}'), decided by {actor}",
                              row)
    return changed


async def _announce(conn: Connection, org: Organisation, phone: str, scope: str, message_sid: str | None) -> None:
    event = ConsentChanged(org_id=org.id, phone=phone, sender=scope or None, action="opt_out", source="staff",
                           message_sid=message_sid)
    await suppressions.QUERIES.execute(conn, "enqueue-event", topic=CONSENT.name, key=phone,
                                       payload=event.model_dump_json())


async def _write_back(conn: Connection, org: Organisation, phone: str, source_text: str,
                      row: asyncpg.Record) -> None:
    await suppressions.QUERIES.execute(
        conn, "enqueue-imis-jobs", org_id=org.id, phone=phone, action="opt_out", source_text=source_text[:200],
        occurred_at=row["occurred_at"], consent_id=row["id"], window_days=suppressions.MEMBER_WINDOW_DAYS,
    )
