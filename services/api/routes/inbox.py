"""``/api/v1/inbox``: members' replies as conversations, and staff answers to them (issue 27).

A conversation is one member number and the sender they wrote to (the opt-out service files each reply that
is not a keyword: services/optout/inbox.py). Staff read it (``read`` clears its unread count), assign it to a
user of the organisation, mark it done (a new reply opens it again) and answer it. An answer is queued as a
one-off text (libs/common/one_off_texts.py) that the dispatcher sends from the conversation's sender, paced
with the campaigns on it, once: the ``Idempotency-Key`` header makes a retried request return the text it
queued first. A member suppressed for that sender (or the whole organisation) cannot be answered: 409
``recipient_suppressed`` saying why; the dispatcher checks again before it sends.
"""

from __future__ import annotations

import pathlib
from datetime import datetime
from typing import Annotated, Final, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common import one_off_texts
from libs.common.db import Connection, Queries, transaction
from libs.common.one_off_texts import MAX_SEGMENTS, OneOff
from libs.common.segments import InvalidBody, count_segments
from services.api.deps import IdempotencyKey, OrgDep, PageOffset, PoolDep, PrincipalDep
from services.api.errors import Conflict, InvalidInput, NotFound

QUERIES: Final = Queries.load(pathlib.Path(__file__).parents[1] / "inbox.sql")

router = APIRouter(prefix="/inbox", tags=["inbox"])

State = Literal["open", "done"]
ConversationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=1600)]
SUPPRESSION_REASONS: Final[dict[str, str]] = {
    "keyword": "the member texted STOP", "reply": "the member asked in their own words not to be texted",
    "review_hold": "a reply that may revoke consent is waiting for review",
    "review": "staff decided a reply revoked consent", "manual": "a revocation was recorded by staff",
    "twilio_21610": "Twilio reports the member unsubscribed", "staff": "staff suppressed the number",
    "import": "the number was imported as suppressed",
}


class ConversationOut(BaseModel):
    id: int
    phone: str
    sender: str = Field(description="the number the member wrote to; answers go from it")
    member_id: str | None = Field(description="the member's iMIS ID, from the snapshot of the run they answered")
    member_name: str | None
    campaign_id: UUID | None = Field(description="the campaign whose text the latest reply answers")
    campaign_name: str | None
    unread: int
    state: State
    assigned_to: UUID | None
    assigned_email: str | None
    last_message_at: datetime
    last_reply: str | None = None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    total: int
    unread: int = Field(description="open conversations with an unread reply")


class Message(BaseModel):
    direction: Literal["in", "out"]
    body: str
    at: datetime
    kind: str | None = Field(description="campaign, staff_reply, keyword_reply, revocation_confirmation; "
                                         "null for the member's own")
    state: str | None = Field(description="for texts sent: pending, claimed, sent, failed, suppressed...")
    author: str | None


class ThreadOut(BaseModel):
    conversation: ConversationOut
    messages: list[Message]
    can_reply: bool
    cannot_reply_because: str | None


class UnreadOut(BaseModel):
    unread: int


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UUID | None = Field(description="a user of the organisation, or null for nobody")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body


class ReplyOut(BaseModel):
    id: int
    state: str
    segments: int


@router.get("", summary="Conversations, latest first")
async def conversations(org: OrgDep, principal: PrincipalDep, pool: PoolDep, offset: PageOffset = 0,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50, state: State | None = None,
                        unread: bool = False, mine: bool = False, campaign_id: UUID | None = None,
                        since: datetime | None = None, until: datetime | None = None) -> ConversationPage:
    if mine and principal.user_id is None:
        raise InvalidInput("mine", "user_required", "an API key is no user: 'mine' needs a signed-in user")
    async with pool.acquire() as conn:
        rows = await QUERIES.fetch(conn, "conversations", org_id=org.id, state=state, unread_only=unread,
                                   assigned_to=principal.user_id if mine else None, campaign_id=campaign_id,
                                   since=since, until=until, limit=limit, offset=offset)
        count = await unread_count(conn, org.id)
    return ConversationPage(items=[_conversation(r) for r in rows], total=rows[0]["total"] if rows else 0,
                            unread=count)


@router.get("/unread", summary="How many open conversations have an unread reply")
async def unread(org: OrgDep, pool: PoolDep) -> UnreadOut:
    async with pool.acquire() as conn:
        return UnreadOut(unread=await unread_count(conn, org.id))


@router.get("/{conversation_id}", summary="A conversation and its whole thread, both ways")
async def thread(conversation_id: ConversationId, org: OrgDep, pool: PoolDep) -> ThreadOut:
    async with pool.acquire() as conn:
        return await read_thread(conn, org.id, conversation_id)


@router.post("/{conversation_id}/read", summary="Mark the conversation read")
async def mark_read(conversation_id: ConversationId, org: OrgDep, pool: PoolDep) -> ThreadOut:
    async with pool.acquire() as conn:
        await _changed(await QUERIES.fetchval(conn, "mark-read", org_id=org.id, id=conversation_id), conversation_id)
        return await read_thread(conn, org.id, conversation_id)


@router.post("/{conversation_id}/done", summary="Mark the conversation done (a new reply opens it again)")
async def mark_done(conversation_id: ConversationId, org: OrgDep, pool: PoolDep) -> ThreadOut:
    async with pool.acquire() as conn:
        await _changed(await QUERIES.fetchval(conn, "mark-done", org_id=org.id, id=conversation_id), conversation_id)
        return await read_thread(conn, org.id, conversation_id)


@router.post("/{conversation_id}/assign", summary="Assign the conversation to a user (or to nobody)")
async def assign(conversation_id: ConversationId, body: AssignIn, org: OrgDep, pool: PoolDep) -> ThreadOut:
    async with pool.acquire() as conn:
        await read_thread(conn, org.id, conversation_id)  # 404 first
        done = await QUERIES.fetchval(conn, "assign", org_id=org.id, id=conversation_id, user_id=body.user_id)
        if done is None:
            raise InvalidInput("user_id", "user_unknown", f"no active user {body.user_id} in the organisation")
        return await read_thread(conn, org.id, conversation_id)


@router.post("/{conversation_id}/replies", status_code=202, summary="Answer the member (sent by the dispatcher)",
             responses={409: {"description": "the member is suppressed, so cannot be texted"}})
async def reply(conversation_id: ConversationId, body: ReplyIn, idempotency_key: IdempotencyKey,
                principal: PrincipalDep, pool: PoolDep) -> ReplyOut:
    org = principal.org
    text = reply_body(body.body)
    async with transaction(pool) as conn:
        shown = await read_thread(conn, org.id, conversation_id)
        if not shown.can_reply:
            raise Conflict("recipient_suppressed", f"this member cannot be texted: {shown.cannot_reply_because}")
        c = shown.conversation
        ids = await one_off_texts.queue(conn, [OneOff(
            org.id, "staff_reply", c.sender, c.phone, text, conversation_id=c.id, idempotency_key=idempotency_key,
            author=principal.actor)])
        row = await QUERIES.fetchrow(conn, "one-off", org_id=org.id, id=ids[(org.id, idempotency_key)])
        await QUERIES.fetchval(conn, "mark-read", org_id=org.id, id=conversation_id)
    assert row is not None
    return ReplyOut(id=row["id"], state=row["state"], segments=row["segments"])


def reply_body(body: str) -> str:
    """The text as it will be sent, or a 422 naming ``body``."""
    try:
        counted = count_segments(body)
    except InvalidBody as exc:
        raise InvalidInput("body", exc.code, exc.message) from None
    if counted.segments > MAX_SEGMENTS:
        raise InvalidInput("body", "over_segment_limit",
                           f"the answer is {counted.segments} segments; at most {MAX_SEGMENTS}")
    return body


async def unread_count(conn: Connection, org_id: UUID) -> int:
    return int(await QUERIES.fetchval(conn, "unread-count", org_id=org_id))


async def read_thread(conn: Connection, org_id: UUID, conversation_id: int) -> ThreadOut:
    row = await QUERIES.fetchrow(conn, "conversation", org_id=org_id, id=conversation_id)
    if row is None:
        raise NotFound("conversation_not_found", f"no conversation {conversation_id}")
    messages = await QUERIES.fetch(conn, "thread", org_id=org_id, phone=row["phone"], sender=row["sender"])
    why = None
    if row["suppressed"]:
        why = SUPPRESSION_REASONS.get(row["suppressed_by"] or "", "the number is suppressed")
        why += "; lift it on the Suppressions page only if the member asked to be texted again"
    return ThreadOut(conversation=_conversation(row), messages=[Message(**dict(m)) for m in messages],
                     can_reply=not row["suppressed"], cannot_reply_because=why)


async def _changed(found: int | None, conversation_id: int) -> None:
    if found is None:
        raise NotFound("conversation_not_found", f"no conversation {conversation_id}")


def _conversation(row: asyncpg.Record) -> ConversationOut:
    fields = ConversationOut.model_fields
    return ConversationOut(**{k: row[k] for k in fields if k in row.keys()})
