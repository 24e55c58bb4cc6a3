"""``POST /api/v1/campaigns/{id}/test-send``: the campaign's text, rendered with sample merge values, to
up to five staff numbers through the organisation's own Twilio account.

A test send is not a campaign run: no run, recipient or ledger row is written, no status callback is
asked for, and the campaign's state and counts do not change. A number suppressed for the campaign's
sender (or for the whole organisation) is refused with 409 before anything is sent. Numbers are read as
every other number is (``libs.common.phone.normalise`` with the organisation's default prefix).

Each number's outcome is reported; the call fails as a whole (problem+json) only when Twilio accepted
none of them: 503 ``twilio_unavailable`` (timeout, 429, 5xx; try again) or 422 ``twilio_rejected``.

Wiring (services/api/main.py): ``app.include_router(test_send.router, prefix=API_PREFIX)``, and
``test_send.QUERIES`` in ``ALL_QUERIES`` so its statements are checked at start-up.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal
from uuid import UUID

import requests
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from libs.common.db import Queries, parse_queries
from libs.common.errors import PermanentError, RetryableError
from libs.common.logging import get_logger
from libs.common.merge import MergeError
from libs.common.phone import region_for_prefix
from libs.common.preflight import preview
from libs.common.secret_store import TwilioLogin, open_twilio_login
from libs.common.segments import InvalidBody
from services.api.deps import ActorDep, OrgDep, PoolDep, SecretsDep, WebDep
from services.api.errors import Conflict, InvalidInput, NotFound
from services.api.phone_input import number_input

log = get_logger(__name__)

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

MAX_NUMBERS = 5
# The twilio SDK has no timeout of its own. A person is waiting on this call, so it is shorter than the
# dispatcher's.
TWILIO_TIMEOUT_S = 10.0

# The statements are few and used only here; they follow the same `-- name:` convention as queries.sql.
QUERIES = Queries(parse_queries("""
-- name: test-send-campaign
-- The campaign's body and who it is sent from (its own sender, else the organisation's default).
SELECT c.body, coalesce(s.address, d.address) AS sender
FROM campaigns c
LEFT JOIN senders s ON s.id = c.sender_id AND s.org_id = c.org_id
LEFT JOIN senders d ON d.org_id = c.org_id AND d.is_default
WHERE c.id = :campaign_id AND c.org_id = :org_id;

-- name: test-send-account
-- Sealed credentials, opened as the dispatcher opens them (libs/common/secret_store.py open_twilio_login).
SELECT account_sid, auth_token, api_key_sid, api_key_secret FROM sms_accounts WHERE org_id = :org_id;

-- name: test-send-suppressed
-- Which of :phones may not be texted from :sender (an organisation-wide or sender-scoped entry).
SELECT DISTINCT phone FROM suppressions
WHERE org_id = :org_id AND phone = ANY(CAST(:phones AS text[])) AND scope IN ('', :sender)
ORDER BY phone;
"""))

StaffNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": ["(617) 555-0142"]}]})

    to: list[StaffNumber] = Field(min_length=1, max_length=MAX_NUMBERS,
                                  description="staff numbers; without a leading + the default prefix applies")


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


@router.post("/{campaign_id}/test-send", summary="Send the campaign's text to up to 5 staff numbers",
             responses={409: {"description": "a number is suppressed, or no Twilio account is linked"}})
async def test_send(campaign_id: UUID, body: TestSendIn, org: OrgDep, actor: ActorDep, pool: PoolDep,
                    web: WebDep, secrets: SecretsDep) -> TestSendOut:
    numbers = _numbers(body.to, org.default_country_prefix)
    async with pool.acquire() as conn:
        campaign = await QUERIES.fetchrow(conn, "test-send-campaign", campaign_id=campaign_id, org_id=org.id)
        if campaign is None:
            raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
        if not campaign["sender"]:
            raise Conflict("sender_missing", "the campaign has no sender and the organisation has no default sender")
        row = await QUERIES.fetchrow(conn, "test-send-account", org_id=org.id)
        if row is None:
            raise Conflict("twilio_account_missing", "link a Twilio account in Settings before sending")
        login = await open_twilio_login(conn, secrets, org.id, row)
        suppressed = [r["phone"] for r in await QUERIES.fetch(conn, "test-send-suppressed", org_id=org.id,
                                                              phones=numbers, sender=campaign["sender"])]
    if suppressed:
        raise Conflict("recipient_suppressed",
                       f"suppressed, so not texted: {', '.join(suppressed)}; lift it on the Suppressions page first")
    text = _rendered(campaign["body"] or "", org.default_country_prefix)
    results = await _send_all(login, web.twilio_api_base_url, campaign["sender"], numbers, text)
    log.info("campaign.test_sent", extra={"org_id": str(org.id), "campaign_id": str(campaign_id), "actor": actor,
                                          "sent": sum(r.status == "queued" for r in results), "asked": len(numbers)})
    if not any(r.status == "queued" for r in results):
        _raise_for(results[0])
    return TestSendOut(campaign_id=campaign_id, sender=campaign["sender"], body=text, results=results)


def _numbers(raw: list[str], prefix: str) -> list[str]:
    numbers: list[str] = []
    for index, value in enumerate(raw):
        number = number_input(f"to.{index}", value, prefix)
        if number not in numbers:
            numbers.append(number)
    return numbers


def _rendered(body: str, prefix: str) -> str:
    if not body.strip():
        raise InvalidInput("body", "body_empty", "the campaign has no text yet")
    try:
        return str(preview(body, None, region_for_prefix(prefix))["body"])
    except (MergeError, InvalidBody) as exc:
        raise InvalidInput("body", exc.code, exc.message) from None


async def _send_all(login: TwilioLogin, base_url: str, sender: str, numbers: list[str],
                    text: str) -> list[TestSendResult]:
    """One client per call (a handful of messages): the SDK's requests client, in a worker thread, with
    an explicit timeout. (Its aiohttp client warns on every call with the aiohttp we run.)"""
    http = TwilioHttpClient(timeout=TWILIO_TIMEOUT_S)
    client = Client(login.username, login.password, login.account_sid, http_client=http)
    client.api.base_url = base_url.rstrip("/")
    try:
        return [await asyncio.to_thread(_send_one, client, sender, to, text) for to in numbers]
    finally:
        if http.session is not None:
            http.session.close()


def _send_one(client: Client, sender: str, to: str, text: str) -> TestSendResult:
    params: dict[str, object] = {"to": to, "body": text}
    if sender.startswith("MG"):
        params["messaging_service_sid"] = sender
    else:
        params["from_"] = sender
    try:
        message = client.messages.create(**params)  # type: ignore[arg-type]
    except TwilioRestException as exc:
        retryable = exc.status == 429 or exc.status >= 500
        return TestSendResult(to=to, status="failed", error_code=exc.code,
                              error=("unavailable: " if retryable else "") + str(exc.msg))
    except (requests.RequestException, OSError, TwilioException) as exc:  # a timeout is requests' ReadTimeout
        return TestSendResult(to=to, status="failed", error=f"unavailable: {type(exc).__name__}")
    return TestSendResult(to=to, status="queued", message_sid=message.sid)


def _raise_for(result: TestSendResult) -> None:
    message = result.error or "Twilio refused the message"
    if message.startswith("unavailable: "):
        raise RetryableError("twilio_unavailable", f"Twilio could not be reached or is busy ({message[13:]}); "
                             "try again in a minute")
    code = f" (Twilio error {result.error_code})" if result.error_code else ""
    raise PermanentError("twilio_rejected", f"Twilio refused the message to {result.to}{code}: {message}")
