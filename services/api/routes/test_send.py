"""``POST /api/v1/campaigns/{id}/test-send``: the campaign's text, rendered with sample merge values, to
up to five of the organisation's staff test numbers, through the same Twilio adapter as campaign sends.

A test send is bounded (``services/api/test_send_limits.py``): a number that is not on the organisation's
list of staff test numbers is a 422 naming the field; past the per-caller or per-organisation limit it is
a 429 with ``Retry-After``, and nothing is sent. It counts like any text: an unverified toll-free sender
to US/Canada reserves its segments under the sender's volume caps (refused, 429, when one is reached),
and each text gets a send-ledger row (no run; ``test_campaign_id`` names the campaign; status callbacks
apply to it by its SID), a line in the day's usage and, for the send, a ``test_sent`` audit row with the
numbers masked. The campaign's state, runs and counts do not change. A number suppressed for the
campaign's sender (or the whole organisation) is refused with 409 before anything is sent.

Each number's outcome is reported; the call fails as a whole (problem+json) only when Twilio accepted
none of them: 503 ``twilio_unavailable`` (timeout, 429, 5xx; try again) or 422 ``twilio_rejected``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common import sender_volume
from libs.common.db import Connection, transaction
from libs.common.errors import PermanentError, RetryableError
from libs.common.logging import get_logger, mask_phone
from libs.common.merge import MergeError
from libs.common.phone import Normalised, normalise, region_for_prefix
from libs.common.preflight import preview
from libs.common.pricing import PriceTable
from libs.common.secret_store import open_twilio_login
from libs.common.segments import InvalidBody
from libs.common.sender_caps import is_capped, next_period_start
from libs.common.twilio_errors import SendFailure, is_transient
from libs.common.twilio_sender import Account, MessageSender, TwilioSender
from services.api import audit, test_send_db
from services.api.audit import Caller, CallerDep
from services.api.deps import ActorDep, OrgDep, PoolDep, SecretsDep, WebDep
from services.api.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from services.api.phone_input import number_input
from services.api.test_send_db import TestText
from services.api.test_send_limits import MAX_NUMBERS_PER_SEND, WINDOW_S, limit_passed, throttle_limits

log = get_logger(__name__)

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

# A person is waiting on this call, so it is shorter than the dispatcher's.
TWILIO_TIMEOUT_S = 10.0

StaffNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": ["(617) 555-0142"]}]})

    to: list[StaffNumber] = Field(min_length=1, max_length=MAX_NUMBERS_PER_SEND,
                                  description="staff test numbers (Settings); without a leading + the default "
                                              "prefix applies")


class TestSendResult(BaseModel):
    to: str = Field(description="the number in E.164")
    status: Literal["queued", "failed"]
    message_sid: str | None = None
    error_code: int | None = Field(default=None, description="Twilio's error code, when it refused")
    error: str | None = None


class TestSendOut(BaseModel):
    campaign_id: UUID
    sender: str
    body: str = Field(description="the text sent: the campaign's body with sample merge values")
    results: list[TestSendResult]


@router.post("/{campaign_id}/test-send", summary="Send the campaign's text to up to 5 staff test numbers",
             responses={409: {"description": "a number is suppressed, or no Twilio account is linked"},
                        429: {"description": "too many test texts this hour, or the sender's volume cap is reached"}})
async def test_send(campaign_id: UUID, body: TestSendIn, org: OrgDep, actor: ActorDep, caller: CallerDep,
                    pool: PoolDep, web: WebDep, secrets: SecretsDep) -> TestSendOut:
    numbers = _numbers(body.to, org.default_country_prefix)
    async with pool.acquire() as conn:
        campaign = await test_send_db.campaign(conn, org.id, campaign_id)
        if campaign is None:
            raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
        if not campaign["sender"]:
            raise Conflict("sender_missing", "the campaign has no sender and the organisation has no default sender")
        account = await test_send_db.account(conn, org.id)
        if account is None:
            raise Conflict("twilio_account_missing", "link a Twilio account in Settings before sending")
        login = await open_twilio_login(conn, secrets, org.id, account)
        await _check_test_numbers(conn, org.id, numbers)
        suppressed = await test_send_db.suppressed(conn, secrets, org.id, numbers, campaign["sender"])
    if suppressed:
        raise Conflict("recipient_suppressed",
                       f"suppressed, so not texted: {', '.join(suppressed)}; lift it on the Suppressions page first")
    text, segments = _rendered(campaign["body"] or "", org.default_country_prefix)
    async with transaction(pool) as conn:  # rolled back, so nothing is used up, when a limit refuses it
        await _count_against_limits(conn, org.id, actor, len(numbers))
        await _reserve_under_caps(conn, org.id, campaign["sender"], campaign["verification"], numbers, segments)
    twilio_account = Account(login.account_sid, login.username, login.password,
                             account["webhook_base_url"].rstrip("/") + "/twilio/status",
                             alpha_sender_id=account["alpha_sender_id"])
    texts = await _send_all(twilio_account, web.twilio_api_base_url, campaign["sender"], numbers, text, segments)
    async with transaction(pool) as conn:
        await _record(conn, caller, campaign_id, campaign["sender"], account, texts)
    log.info("campaign.test_sent", extra={"org_id": str(org.id), "campaign_id": str(campaign_id), "actor": actor,
                                          "sent": sum(t.state == "sent" for t in texts), "asked": len(numbers)})
    results = [_result(t) for t in texts]
    if not any(r.status == "queued" for r in results):
        _raise_for(texts[0])
    return TestSendOut(campaign_id=campaign_id, sender=campaign["sender"], body=text, results=results)


def _numbers(raw: list[str], prefix: str) -> list[str]:
    numbers: list[str] = []
    for index, value in enumerate(raw):
        number = number_input(f"to.{index}", value, prefix)
        if number not in numbers:
            numbers.append(number)
    return numbers


async def _check_test_numbers(conn: Connection, org_id: UUID, numbers: list[str]) -> None:
    listed = await test_send_db.test_numbers_among(conn, org_id, numbers)
    for index, number in enumerate(numbers):
        if number not in listed:
            raise InvalidInput(f"to.{index}", "not_a_test_number",
                               f"{number} is not one of the organisation's staff test numbers; test texts go only "
                               "to those (an admin adds them in Settings)")


def _rendered(body: str, prefix: str) -> tuple[str, int]:
    if not body.strip():
        raise InvalidInput("body", "body_empty", "the campaign has no text yet")
    try:
        shown = preview(body, None, region_for_prefix(prefix))
    except (MergeError, InvalidBody) as exc:
        raise InvalidInput("body", exc.code, exc.message) from None
    return str(shown["body"]), int(shown["segments"])


async def _count_against_limits(conn: Connection, org_id: UUID, actor: str, texts: int) -> None:
    limits = throttle_limits(org_id, actor)
    counts = await test_send_db.count_test_sends(conn, list(limits), texts, WINDOW_S)
    passed = limit_passed(counts, limits)
    if passed is not None:
        key, retry_after_s = passed
        who = "you" if key.startswith("user:") else "your organisation"
        raise TooManyRequests("test_sends_limited",
                              f"{who} may send at most {limits[key]} test texts an hour; try again in "
                              f"{max(1, round(retry_after_s / 60))} minutes", retry_after_s)


async def _reserve_under_caps(conn: Connection, org_id: UUID, sender: str, verification: str,
                              numbers: list[str], segments: int) -> None:
    """The dispatcher's rule for campaign texts (``sender_caps.is_capped``), applied to test texts."""
    capped = [n for n in numbers if is_capped(verification, n)]
    if not capped:
        return
    policy = await sender_volume.cap_policy(conn, org_id, verification)
    if policy is None:
        raise Conflict("sender_unverified", f"{sender} is {verification}: an unverified toll-free number cannot "
                       "text US/Canada numbers")
    now = datetime.now(UTC)
    reached = await sender_volume.reserve_volume(conn, sender, segments * len(capped), policy.limits(), now)
    if reached is not None:
        opens_in = int((next_period_start(reached, now) - now).total_seconds())
        raise TooManyRequests("cap_reached", f"{sender}'s {reached} volume cap is reached; test texts count "
                              "against it as campaign texts do", opens_in)


async def _send_all(account: Account, base_url: str, sender: str, numbers: list[str], text: str,
                    segments: int) -> list[TestText]:
    twilio = TwilioSender(account, api_base_url=base_url, timeout_s=TWILIO_TIMEOUT_S)
    try:
        return [await _send_one(twilio, sender, to, text, segments) for to in numbers]
    finally:
        await twilio.aclose()


async def _send_one(twilio: MessageSender, sender: str, to: str, text: str, segments: int) -> TestText:
    try:
        accepted = await twilio.send(sender=sender, to=to, body=text)
    except SendFailure as exc:
        reason = ("unavailable: " if is_transient(exc.remedy) else "") + exc.message
        return TestText(to, segments, "failed", error_code=exc.twilio_code, reason=reason[:500])
    return TestText(to, accepted.segments or segments, "sent", message_sid=accepted.sid,
                    twilio_status=accepted.status)


async def _record(conn: Connection, caller: Caller, campaign_id: UUID, sender: str,
                  account: asyncpg.Record, texts: list[TestText]) -> None:
    org_id = caller.org_id
    await test_send_db.record_test_texts(conn, org_id, campaign_id, sender, texts)
    sent = [t for t in texts if t.state == "sent"]
    prices = PriceTable()
    costs = [prices.cost_for(region_of(t.to), t.segments) for t in sent]
    await test_send_db.count_test_usage(
        conn, org_id, time_zone=account["time_zone"], test=account["test_mode"], messages=len(sent),
        segments=sum(t.segments for t in sent), failed=len(texts) - len(sent),
        unpriced_segments=sum(t.segments for t, c in zip(sent, costs, strict=True) if c is None),
        segment_cost=sum((c for c in costs if c is not None), Decimal(0)))
    await audit.record_campaign(conn, caller, "test_sent", campaign_id,
                                detail={"to": [mask_phone(t.to) for t in texts], "sent": len(sent),
                                        "failed": len(texts) - len(sent), "sender": sender,
                                        "message_sids": [t.message_sid for t in sent]})


def region_of(e164: str) -> str:
    number = normalise(e164)
    return number.region if isinstance(number, Normalised) else "ZZ"  # ZZ: no price, as in services/usage


def _result(text: TestText) -> TestSendResult:
    if text.state == "sent":
        return TestSendResult(to=text.to, status="queued", message_sid=text.message_sid)
    return TestSendResult(to=text.to, status="failed", error_code=text.error_code, error=text.reason)


def _raise_for(text: TestText) -> None:
    message = text.reason or "Twilio refused the message"
    if message.startswith("unavailable: "):
        raise RetryableError("twilio_unavailable", f"Twilio could not be reached or is busy ({message[13:]}); "
                             "try again in a minute")
    code = f" (Twilio error {text.error_code})" if text.error_code else ""
    raise PermanentError("twilio_rejected", f"Twilio refused the message to {text.to}{code}: {message}")
