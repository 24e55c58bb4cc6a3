"""Control API of the Twilio stand-in, under ``/_control`` (not part of Twilio's API; no auth).

State:
  ``POST /_control/reset``                         everything back to the configuration
  ``POST /_control/snapshot``                      write the ``--state-file`` now
  ``GET  /_control/config``                        SIDs, numbers and services (no secrets)
Faults (bodies in ``standins.twilio.faults``):
  ``POST /_control/faults``, ``GET /_control/faults``, ``DELETE /_control/faults``
  ``POST /_control/faults/release``                answer every request a timeout plan holds
Senders and account:
  ``PUT /_control/numbers/{phone}``                add or change a number: verification, rate, sms_url, service
  ``PUT /_control/verifications/{phone}``          the review of its toll-free verification: ``{"status",
                                                   "rejection_reason", "error_code", "edit_window_s"}``
  ``PUT /_control/services/{sid}``                 advanced_opt_out, inbound_request_url, status_callback, ...
  ``PUT /_control/account``                        type (Trial/Full), status, friendly_name
  ``PUT /_control/webhook-signing``                how webhooks are signed: ``{"scheme": "auth_token"}`` or
                                                   ``{"scheme": "shared_key", "shared_key_id", "algorithm"}``
  ``GET /_control/queues``                         waiting messages, segments and wait per sender
Members:
  ``POST /_control/replies`` ``{"from", "to", "body"}``  a member texts a number (STOP/START/HELP/anything)
  ``GET  /_control/optouts``                       the stand-in's own opt-out list
Inspection:
  ``GET /_control/messages?to=&from=&direction=``  messages with queue times, oldest first
  ``GET /_control/messages/{sid}``
  ``GET /_control/arrivals?sender=&after=&limit=`` the arrival log (outbound API messages, by seq)
  ``GET /_control/arrivals/summary?window=1``      per-sender rates and peak segments per window
  ``GET /_control/callbacks?message_sid=&status=`` every status-callback attempt
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from standins.twilio import inbound, resources, snapshot, verifications
from standins.twilio.arrivals import arrival_row, summarize
from standins.twilio.config import Verification
from standins.twilio.context import TwilioApp
from standins.twilio.faults import FaultIn
from standins.twilio.signature import Algorithm, WebhookSigning
from standins.twilio.validation import E164

router = APIRouter(prefix="/_control", tags=["control"])


def _app(request: Request) -> TwilioApp:
    app: TwilioApp = request.app.state.twilio
    return app


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    _app(request).reset()
    return {"status": "reset"}


@router.post("/snapshot")
async def save_snapshot(request: Request) -> dict[str, Any]:
    app = _app(request)
    if app.config.state_file is None:
        raise HTTPException(409, "no --state-file configured")
    return {"path": app.config.state_file, "messages": snapshot.save(app.state, app.config.state_file)}


@router.get("/config")
async def config(request: Request) -> dict[str, Any]:
    app = _app(request)
    c = app.config
    return {
        "account_sid": c.account_sid,
        "api_key_sid": c.api_key_sid,
        "test_account_sid": c.test_account_sid,
        "default_rate": c.default_rate,
        "numbers": [
            {k: v for k, v in asdict(n).items() if k != "date_created"} for n in app.state.senders.numbers.values()
        ],
        "services": [
            {"sid": s.sid, "friendly_name": s.friendly_name, "numbers": list(s.numbers),
             "advanced_opt_out": s.advanced_opt_out}
            for s in app.state.senders.services.values()
        ],
    }


@router.post("/faults", status_code=201)
async def add_fault(plan: FaultIn, request: Request) -> dict[str, Any]:
    try:
        added = _app(request).state.faults.add(plan)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": added.id, **plan.model_dump()}


@router.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    app = _app(request)
    return {"faults": app.state.faults.describe(), "hung_requests": app.hung}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, str]:
    _app(request).state.faults.clear()
    return {"status": "cleared"}


@router.post("/faults/release")
async def release(request: Request) -> dict[str, int]:
    app = _app(request)
    held = app.hung
    app.release_hung()
    return {"released": held}


class NumberIn(BaseModel):
    verification: Verification | None = None
    rate: float | None = Field(default=None, gt=0)
    sms_url: str | None = None
    service: str | None = None
    friendly_name: str | None = None


@router.put("/numbers/{phone}")
async def put_number(phone: str, body: NumberIn, request: Request) -> dict[str, Any]:
    if not E164.fullmatch(phone):
        raise HTTPException(422, "phone must be E.164")
    app = _app(request)
    senders = app.state.senders
    old = senders.numbers.get(phone)
    given = body.model_dump(exclude_unset=True)
    now = time.time()
    settings = {
        "verification": given.get("verification", old.verification if old else "verified"),
        "rate": given.get("rate", old.rate if old else None),
        "sms_url": given.get("sms_url", old.sms_url if old else None),
        "service": given.get("service", old.service_sid if old else None),
        "friendly_name": given.get("friendly_name", old.friendly_name if old else None),
    }
    try:
        number = senders.add_number(phone, now=now, **settings)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    app.state.queues.set_rate(phone, number.rate, now)
    return {k: v for k, v in asdict(number).items() if k != "date_created"}


class VerificationReview(BaseModel):
    status: Literal["PENDING_REVIEW", "IN_REVIEW", "TWILIO_APPROVED", "TWILIO_REJECTED"]
    rejection_reason: str | None = None
    error_code: int | None = Field(default=None, ge=30400, le=30599)
    edit_window_s: float = Field(default=verifications.EDIT_WINDOW_S, ge=0)


@router.put("/verifications/{phone}")
async def review_verification(phone: str, body: VerificationReview, request: Request) -> dict[str, Any]:
    """Twilio's review moves a number's submission on (a configured state counts as one); the number follows."""
    app = _app(request)
    number = app.state.senders.numbers.get(phone)
    if number is None or not number.toll_free:
        raise HTTPException(404, f"no toll-free number {phone}")
    submission = app.state.verifications.by_phone.get(phone) or resources.implied_submission(app.state, number)
    if submission is None:
        raise HTTPException(409, f"{phone} has no verification submitted yet")
    submission.review(body.status, time.time(), reason=body.rejection_reason, error_code=body.error_code,
                      edit_window_s=body.edit_window_s)
    app.state.verifications.by_phone[phone] = submission
    number.verification = verifications.NUMBER_STATE[body.status]
    return {"sid": submission.sid, "status": submission.status, "edit_allowed": submission.edit_allowed}


class ServiceIn(BaseModel):
    friendly_name: str | None = None
    inbound_request_url: str | None = None
    status_callback: str | None = None
    sticky_sender: bool | None = None
    smart_encoding: bool | None = None
    validity_period: int | None = Field(default=None, ge=1, le=36_000)
    use_inbound_webhook_on_number: bool | None = None
    advanced_opt_out: bool | None = None


@router.put("/services/{sid}")
async def put_service(sid: str, body: ServiceIn, request: Request) -> dict[str, Any]:
    svc = _app(request).state.senders.services.get(sid)
    if svc is None:
        raise HTTPException(404, f"no service {sid}")
    for name, value in body.model_dump(exclude_unset=True).items():
        setattr(svc, name, value)
    return {"sid": svc.sid, **body.model_dump(exclude_unset=True)}


class AccountIn(BaseModel):
    type: Literal["Trial", "Full"] | None = None
    status: Literal["active", "suspended", "closed"] | None = None
    friendly_name: str | None = None


@router.put("/account")
async def put_account(body: AccountIn, request: Request) -> dict[str, str]:
    state = _app(request).state
    state.account_type = body.type or state.account_type
    state.account_status = body.status or state.account_status
    state.friendly_name = body.friendly_name or state.friendly_name
    return {"type": state.account_type, "status": state.account_status, "friendly_name": state.friendly_name}


class SigningIn(BaseModel):
    scheme: Literal["auth_token", "shared_key"]
    shared_key_id: str | None = None  # one of the main account's SharedKeys (POST /v1/Webhooks/SharedKeys)
    algorithm: Algorithm = "HMAC_SHA256"


@router.put("/webhook-signing")
async def put_webhook_signing(body: SigningIn, request: Request) -> dict[str, Any]:
    """From now on every status callback and incoming-message webhook is signed this way."""
    app = _app(request)
    if body.scheme == "auth_token":
        app.dispatcher.signing = WebhookSigning(app.config.auth_token)
        return {"scheme": "auth_token"}
    key = app.state.shared_keys.of(app.config.account_sid, body.shared_key_id or "")
    if key is None:
        raise HTTPException(422, "shared_key_id must name a SharedKey of the main account")
    app.dispatcher.signing = WebhookSigning(key.secret, key.key_id, body.algorithm)
    return {"scheme": "shared_key", "shared_key_id": key.key_id, "algorithm": body.algorithm}


@router.get("/queues")
async def queues(request: Request) -> dict[str, Any]:
    state = _app(request).state
    now = time.time()
    return {"queues": {sender: state.queues.depth(sender, now) for sender in state.queues.queues}}


class ReplyIn(BaseModel):
    from_: str = Field(alias="from", pattern=E164.pattern)
    to: str = Field(pattern=E164.pattern)
    body: str = Field(min_length=1, max_length=1600)


@router.post("/replies")
async def reply(body: ReplyIn, request: Request) -> dict[str, Any]:
    app = _app(request)
    if body.to not in app.state.senders.numbers:
        raise HTTPException(404, f"{body.to} is not a number of this account")
    return await inbound.receive(app.state, app.dispatcher, body.from_, body.to, body.body, time.time())


@router.get("/optouts")
async def optouts(request: Request) -> dict[str, Any]:
    pairs = sorted(_app(request).state.opt_outs)
    return {"opt_outs": [{"scope": scope, "member": member} for scope, member in pairs]}


@router.get("/messages")
async def messages(
    request: Request,
    to: str | None = None,
    from_: str | None = Query(default=None, alias="from"),
    direction: str | None = None,
) -> dict[str, Any]:
    store = _app(request).state.store
    chosen = store.candidates(to, from_)
    return {
        "messages": [
            m.inspection()
            for m in chosen
            if (to is None or m.to == to)
            and (from_ is None or (m.from_ or m.sender) == from_)
            and (direction is None or m.direction == direction)
        ]
    }


@router.get("/messages/{sid}")
async def message(sid: str, request: Request) -> dict[str, Any]:
    found = _app(request).state.store.get(sid)
    if found is None:
        raise HTTPException(404, f"no message {sid}")
    return found.inspection()


@router.get("/arrivals")
async def arrivals(
    request: Request, sender: str | None = None, after: int = 0, limit: int = Query(default=100_000, ge=1)
) -> dict[str, Any]:
    store = _app(request).state.store
    rows = []
    last = after
    for m in store.ordered:
        if m.seq <= after or m.direction != "outbound-api" or (sender is not None and m.sender != sender):
            continue
        rows.append(arrival_row(m))
        last = m.seq
        if len(rows) >= limit:
            break
    return {"arrivals": rows, "next_after": last}


@router.get("/arrivals/summary")
async def arrivals_summary(request: Request, window: float = 1.0) -> dict[str, Any]:
    store = _app(request).state.store
    outbound = (m for m in store.ordered if m.direction == "outbound-api")
    return {"senders": summarize(outbound, window)}


@router.get("/callbacks")
async def callbacks(request: Request, message_sid: str | None = None, status: str | None = None) -> dict[str, Any]:
    log = _app(request).dispatcher.log
    return {
        "callbacks": [
            {**asdict(a), "params": dict(a.params)}
            for a in log
            if (message_sid is None or a.message_sid == message_sid) and (status is None or a.status == status)
        ]
    }
