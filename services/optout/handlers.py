"""What stored webhooks mean, applied to a whole batch inside the processor's transaction.

``apply_batch(conn, rows, deps)`` returns one WebhookResult per row: ``done`` with a stable outcome
(``opted_out``, ``opted_in``, ``help``, ``reply_stored``, ``revoked`` (a free-text revocation),
``review_held`` (a doubtful one, held for staff), ``phone_invalid``, ``applied``, ``stale``,
``ledger_missing``, ``status_unknown``, ``sid_foreign``, ``duplicate``), or ``failed`` with the reason when
the request can never be applied (``field_missing``). Each step is one statement for the whole batch (db.py).
A status callback only ever reads and changes rows of the organisation whose account signed it; one
naming another organisation's message is ``sid_foreign`` and changes nothing.

Idempotent: every write is keyed on the message SID (inbound), on SID + status + error code
(callbacks), or on message SID + scope + action (consent), so a batch applied twice changes nothing the
second time and a Twilio retry is a ``duplicate``. Order is kept where it matters: consent changes to
one number take effect in the order the edge received them, even when the fallback to PostgreSQL applies
a later one first (``apply_consent``: an older change is recorded as superseded), and a ledger row only
ever moves up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import get_args
from uuid import UUID

from libs.common import revocation_confirmations
from libs.common.db import Connection
from libs.common.errors import PermanentError
from libs.common.events import ConsentChanged, Event, MessageStatus
from libs.common.logging import get_logger, mask_phone
from libs.common.topics import CONSENT, MESSAGE_STATUS, TopicSpec
from libs.common.twilio_facts import (
    BAD_NUMBER_STATUS_ERRORS,
    SENDER_UNVERIFIED_ERROR,
    STATUS_RANK,
    UNSUBSCRIBED_ERROR,
)
from services.optout import status as rules
from services.optout.consent import ORG_WIDE, changes_for, event_source, normalize_phone, sender_scope, source_text
from services.optout.db import (
    CallbackInsert,
    CallbackRow,
    ConsentRecord,
    ImisJobRequest,
    InboundRow,
    LedgerMatch,
    OptoutDb,
    StatusUpdate,
    WebhookResult,
    WebhookRow,
)
from services.optout.inbox import Reply, file_replies
from services.optout.keywords import Classification, Kind, classify
from services.optout.review_holds import ReviewHold, hold_for_review
from services.optout.revocation import Reading, Revocation, read_reply

log = get_logger(__name__)

_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
_EVENT_STATUSES = frozenset(get_args(MessageStatus.model_fields["status"].annotation))
_OUTCOME = {Kind.OPT_OUT: "opted_out", Kind.OPT_IN: "opted_in", Kind.HELP: "help", Kind.OTHER: "reply_stored"}


@dataclass(frozen=True, slots=True)
class HandlerDeps:
    db: OptoutDb
    # How far back member_phone_index counts a member as "having used" a number, for the write-back.
    member_window_days: int = 400


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    org_id: UUID
    phone: str
    action: str  # opt_out | opt_in
    source: str  # keyword | reply (free-text revocation) | twilio_21610
    scope: str | None  # the sender-scoped suppression, besides the organisation-wide one
    keyword: str | None
    body: str | None
    message_sid: str
    actor: str
    occurred_at: datetime


async def apply_batch(conn: Connection, rows: Sequence[WebhookRow], deps: HandlerDeps) -> list[WebhookResult]:
    """Apply every row; raises only on a database error (the caller then retries row by row)."""
    results: dict[int, WebhookResult] = {}
    inbound: list[WebhookRow] = []
    callbacks: list[WebhookRow] = []
    for row in rows:
        try:
            _check_fields(row)
        except PermanentError as exc:
            log.warning("webhook.rejected", extra={"webhook_id": row.id, "kind": row.kind, "reason": exc.code})
            results[row.id] = WebhookResult(row.id, "failed", exc.code, exc.message)
            continue
        (inbound if row.kind == "inbound" else callbacks).append(row)
    events: list[tuple[TopicSpec[Event], Event, str]] = []
    consent: list[ConsentRequest] = []
    holds: list[ReviewHold] = []
    replies: list[Reply] = []
    if inbound:
        results |= await _apply_inbound(conn, inbound, deps.db, consent, holds, replies)
    if callbacks:
        results |= await _apply_callbacks(conn, callbacks, deps.db, events, consent)
    await deps.db.enqueue_events(conn, events)
    await apply_consent(conn, deps, consent)
    await hold_for_review(conn, holds)
    await file_replies(conn, replies)
    await revocation_confirmations.queue(conn, [(r.org_id, r.message_sid) for r in consent if r.source == "reply"])
    return [results[row.id] for row in rows]


def _check_fields(row: WebhookRow) -> None:
    needed = ("MessageSid", "From", "To") if row.kind == "inbound" else ("MessageSid", "MessageStatus")
    for name in needed:
        if not row.params.get(name, "").strip() and not (name == "MessageStatus" and row.params.get("SmsStatus")):
            raise PermanentError("field_missing", f"{row.kind} webhook {row.id} has no {name}")


# ---------------------------------------------------------------------------------------------
# Inbound messages


async def _apply_inbound(
    conn: Connection, rows: list[WebhookRow], db: OptoutDb, consent: list[ConsentRequest], holds: list[ReviewHold],
    replies: list[Reply],
) -> dict[int, WebhookResult]:
    """Store every message; queue a consent change for each new opt-out or opt-in keyword and free-text
    revocation, a review for each doubtful one, and every other reply and HELP for the inbox (inbox.py)."""
    p = [row.params for row in rows]
    tos = [params["To"].strip() for params in p]
    services = [params.get("MessagingServiceSid", "").strip() or None for params in p]
    phones = [normalize_phone(params["From"], row.default_country_prefix) for params, row in zip(p, rows, strict=True)]
    kinds = await db.sender_kinds(conn, sorted({(row.org_id, to) for row, to in zip(rows, tos, strict=True)}))
    links = await db.last_sends_to(conn, [(r.org_id, ph or "", to, sv)
                                          for r, ph, to, sv in zip(rows, phones, tos, services, strict=True)])
    meanings = [
        # An unknown number counts as toll-free: the conservative reading of YES (keywords.py).
        classify(params.get("Body", ""), opt_out_type=params.get("OptOutType"),
                 toll_free=kinds.get((row.org_id, to), "toll_free") == "toll_free")
        for params, row, to in zip(p, rows, tos, strict=True)
    ]
    # What Twilio's filter lets through may still revoke consent in the member's own words (revocation.py).
    readings = [_revocation_in(params.get("Body", ""), meaning) for params, meaning in zip(p, meanings, strict=True)]
    meanings = [Classification(Kind.OPT_OUT, reading.matched) if reading and reading.revocation is Revocation.CERTAIN
                else meaning for meaning, reading in zip(meanings, readings, strict=True)]
    new = await db.insert_inbound(conn, [
        InboundRow(
            webhook_id=row.id, org_id=row.org_id, message_sid=params["MessageSid"].strip()[:64],
            from_number=params["From"][:64], phone=phones[i], to_number=tos[i][:64], messaging_service_sid=services[i],
            body=params.get("Body", ""), num_media=_small_int(params.get("NumMedia")), kind=meanings[i].kind.value,
            keyword=meanings[i].keyword, run_id=links.get(i, (None, None))[0],
            recipient_id=links.get(i, (None, None))[1], received_at=row.received_at,
        )
        for i, (row, params) in enumerate(zip(rows, p, strict=True))
    ])
    results = {}
    for i, row in enumerate(rows):
        meaning, phone = meanings[i], phones[i]
        if row.id not in new:
            outcome = "duplicate"
        elif meaning.changes_consent and phone is None:
            log.warning("inbound.phone_unusable", extra={"webhook_id": row.id, "keyword": meaning.keyword})
            outcome = "phone_invalid"
        elif (reading := readings[i]) is not None and reading.revocation is Revocation.DOUBTFUL:
            outcome = "review_held" if phone is not None else "phone_invalid"
            if phone is not None:
                holds.append(ReviewHold(row.org_id, p[i]["MessageSid"].strip(), sender_scope(tos[i], services[i]),
                                        reading.matched or "", reading.language or ""))
        else:
            outcome = _OUTCOME[meaning.kind] if reading is None else "revoked"  # None, or a certain revocation
            if outcome in ("reply_stored", "help") and phone is not None:
                replies.append(Reply(
                    org_id=row.org_id, phone=phone, sender=tos[i], message_sid=p[i]["MessageSid"].strip(),
                    body=p[i].get("Body", ""), help=meaning.kind is Kind.HELP,
                    answered_by_twilio=bool((p[i].get("OptOutType") or "").strip()),
                    run_id=links.get(i, (None, None))[0], recipient_id=links.get(i, (None, None))[1],
                    received_at=row.received_at))
            if meaning.changes_consent:
                consent.append(ConsentRequest(
                    org_id=row.org_id, phone=phone, action=meaning.kind.value,  # type: ignore[arg-type]
                    source="keyword" if reading is None else "reply",
                    scope=sender_scope(tos[i], services[i]), keyword=meaning.keyword, body=p[i].get("Body", ""),
                    message_sid=p[i]["MessageSid"].strip(), actor="member", occurred_at=row.received_at,
                ))
        results[row.id] = WebhookResult(row.id, "done", outcome)
    return results


def _revocation_in(body: str, meaning: Classification) -> Reading | None:
    """A certain or doubtful revocation in an ordinary reply (not a keyword), else None."""
    if meaning.kind is not Kind.OTHER:
        return None
    reading = read_reply(body)
    return None if reading.revocation is Revocation.NONE else reading


def _small_int(raw: str | None) -> int:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 4 else 0


# ---------------------------------------------------------------------------------------------
# Status callbacks


async def _apply_callbacks(
    conn: Connection, rows: list[WebhookRow], db: OptoutDb, events: list[tuple[TopicSpec[Event], Event, str]],
    consent: list[ConsentRequest],
) -> dict[int, WebhookResult]:
    """Store each callback once, raise the ledger rows, queue MessageStatus; 21610 also suppresses."""
    inserts = []
    for row in rows:
        params = row.params
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()[:32]
        raw_error = params.get("ErrorCode", "").strip()[:16]
        cost = rules.cost_of(status, rules.parse_error_code(raw_error), rules.parse_price(params.get("Price")))
        inserts.append(CallbackInsert(row.id, row.org_id, params["MessageSid"].strip()[:64], status, raw_error, cost))
    new = await db.insert_status_callbacks(conn, inserts)
    fresh = [CallbackRow(new[c.webhook_id], c.org_id, c.message_sid, c.status, c.error_code, c.price)
             for c in inserts if c.webhook_id in new and c.status in STATUS_RANK]
    matches = await apply_callbacks(conn, db, fresh)

    results = {}
    bad_numbers: list[tuple[UUID, str, int]] = []
    unverified: list[tuple[UUID, str]] = []
    for row, c in zip(rows, inserts, strict=True):
        match = matches.get(new[c.webhook_id]) if c.webhook_id in new else None
        if c.webhook_id not in new:
            outcome = "duplicate"
        elif c.status not in STATUS_RANK:
            log.warning("status.unknown", extra={"webhook_id": row.id, "status": c.status})
            outcome = "status_unknown"
        elif match is not None and match.foreign:
            # Signed by one organisation's account for another organisation's message: it changes nothing.
            log.warning("status.sid_foreign", extra={"webhook_id": row.id, "org_id": str(row.org_id),
                                                     "message_sid": c.message_sid})
            outcome = "sid_foreign"
        else:
            outcome = "applied" if match and match.applied else "stale" if match and match.matched else "ledger_missing"
            if not (match and match.matched):
                log.info("status.sid_unknown", extra={"webhook_id": row.id, "message_sid": c.message_sid})
        results[row.id] = WebhookResult(row.id, "done", outcome)
        if outcome in ("duplicate", "sid_foreign"):
            continue
        error_code = rules.parse_error_code(c.error_code)
        if error_code in BAD_NUMBER_STATUS_ERRORS:
            bad_numbers.append((row.org_id, c.message_sid, error_code))
        if error_code == SENDER_UNVERIFIED_ERROR:
            unverified.append((row.org_id, c.message_sid))
        if _MESSAGE_SID.match(c.message_sid) and c.status in _EVENT_STATUSES:
            event = MessageStatus(org_id=row.org_id, message_sid=c.message_sid, status=c.status,  # type: ignore[arg-type]
                                  error_code=error_code, price=c.price)
            events.append((MESSAGE_STATUS, event, c.message_sid))
        if error_code == UNSUBSCRIBED_ERROR:
            request = _unsubscribed(row, c.message_sid)
            if request is not None:
                consent.append(request)
    await db.mark_bad_numbers(conn, bad_numbers)
    if unverified:
        log.error("sender.unverified", extra={"message_sids": [sid for _, sid in unverified[:5]],
                                              "error_code": SENDER_UNVERIFIED_ERROR})
        await db.stop_unverified_senders(conn, unverified)
    return results


async def apply_callbacks(
    conn: Connection, db: OptoutDb, callbacks: Sequence[CallbackRow]
) -> dict[int, LedgerMatch]:
    """Apply stored callbacks to their own organisation's ledger and mark them; returns
    {callback_id: LedgerMatch}.

    Only the highest-ranked callback of each (organisation, SID) is sent to the database (the first of
    equal rank, so the first terminal status stays); the others are matched but not applied.
    """
    best: dict[tuple[UUID, str], CallbackRow] = {}
    for c in callbacks:
        key = (c.org_id, c.message_sid)
        current = best.get(key)
        if current is None or STATUS_RANK[c.message_status] > STATUS_RANK[current.message_status]:
            best[key] = c
    found = await db.apply_statuses(conn, [
        StatusUpdate(c.org_id, c.message_sid, c.message_status, rules.parse_error_code(c.error_code), c.price)
        for c in best.values()
    ], STATUS_RANK)
    marks = {}
    for c in callbacks:
        key = (c.org_id, c.message_sid)
        match = found[key]
        marks[c.id] = LedgerMatch(match.matched, match.applied and best[key].id == c.id, match.foreign)
    await db.mark_callbacks(conn, [(cid, m.matched, m.applied) for cid, m in marks.items()])
    return marks


def _unsubscribed(row: WebhookRow, message_sid: str) -> ConsentRequest | None:
    """A send refused with 21610: the member had replied STOP to that sender; suppress them."""
    phone = normalize_phone(row.params.get("To", ""), row.default_country_prefix)
    if phone is None:
        log.warning("status.phone_unusable", extra={"webhook_id": row.id, "error_code": UNSUBSCRIBED_ERROR})
        return None
    scope = sender_scope(row.params.get("From", ""), row.params.get("MessagingServiceSid") or None)
    return ConsentRequest(org_id=row.org_id, phone=phone, action="opt_out", source="twilio_21610", scope=scope,
                          keyword=None, body=None, message_sid=message_sid, actor="twilio", occurred_at=row.received_at)


# ---------------------------------------------------------------------------------------------
# Consent


def rounds(requests: Sequence[ConsentRequest]) -> list[list[ConsentRequest]]:
    """Split requests so that no round holds one number twice; order per number is kept across rounds."""
    out: list[list[ConsentRequest]] = []
    seen: dict[tuple[UUID, str], int] = {}
    for req in requests:
        n = seen.get((req.org_id, req.phone), -1) + 1
        seen[(req.org_id, req.phone)] = n
        if n == len(out):
            out.append([])
        out[n].append(req)
    return out


async def apply_consent(conn: Connection, deps: HandlerDeps, requests: Sequence[ConsentRequest]) -> None:
    """Suppress or lift in every scope, append the history, queue ConsentChanged and the iMIS jobs.

    A change already recorded for its message SID is skipped: no second event or job. Changes take effect
    in the order the edge received them (``occurred_at``), whatever order they are applied in: one older
    than a member's or Twilio's change already applied to that number and scope is recorded as
    ``superseded`` and changes nothing else (no suppression, event or iMIS job).
    """
    in_receipt_order = sorted(requests, key=lambda req: req.occurred_at)  # stable: ties keep arrival order
    for batch in rounds(in_receipt_order):
        await _apply_round(conn, deps, batch)


async def _apply_round(conn: Connection, deps: HandlerDeps, requests: list[ConsentRequest]) -> None:
    db = deps.db
    pairs = [(req, change) for req in requests for change in changes_for(req.phone, req.action, req.scope)]
    superseded = await db.superseded_consent(conn, [(req.org_id, c.phone, c.scope, req.occurred_at)
                                                    for req, c in pairs])
    live = [pair for i, pair in enumerate(pairs) if i not in superseded]
    outs = [(req.org_id, c.phone, c.scope) for req, c in live if req.action == "opt_out"]
    ins = [(req.org_id, c.phone, c.scope) for req, c in live if req.action == "opt_in"]
    changed = set()
    if outs:
        sources = [req.source for req, _ in live if req.action == "opt_out"]
        reasons = [req.keyword for req, _ in live if req.action == "opt_out"]
        changed |= await db.suppress(conn, outs, sources=sources, reasons=reasons)
    if ins:
        changed |= await db.lift_suppressions(conn, ins)
    recorded = await db.insert_consent(conn, [
        ConsentRecord(org_id=req.org_id, phone=req.phone, scope=c.scope, action=req.action, source=req.source,
                      keyword=req.keyword, body=req.body, message_sid=req.message_sid, actor=req.actor,
                      changed=i not in superseded and (req.org_id, c.phone, c.scope) in changed,
                      occurred_at=req.occurred_at, superseded=i in superseded)
        for i, (req, c) in enumerate(pairs)
    ])
    events: list[tuple[TopicSpec[Event], Event, str]] = []
    jobs = []
    for req, c in live:
        consent_id = recorded.get((req.org_id, c.phone, c.scope))
        if consent_id is None:
            continue
        event = ConsentChanged(org_id=req.org_id, phone=req.phone, sender=c.event_sender, action=req.action,  # type: ignore[arg-type]
                               source=event_source(req.source), message_sid=req.message_sid)
        events.append((CONSENT, event, req.phone))
        if c.scope == ORG_WIDE:
            text = source_text(req.keyword, req.source, req.phone)
            jobs.append(ImisJobRequest(req.org_id, req.phone, req.action, text, req.occurred_at, consent_id))
    await db.enqueue_events(conn, events)
    await db.enqueue_imis_jobs(conn, jobs, window_days=deps.member_window_days)
    stale = {pairs[i][0] for i in superseded}
    for req in requests:
        fields = {"org_id": str(req.org_id), "phone": mask_phone(req.phone), "action": req.action,
                  "source": req.source}
        if req in stale:  # a later word of the member's (or Twilio's), by receipt time, was applied already
            log.warning("consent.superseded", extra=fields)
        else:
            log.info("consent.changed", extra=fields)
