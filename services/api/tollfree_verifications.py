"""A sender's toll-free verification with Twilio's Tollfree Verifications API
(``messaging.twilio.com/v1/Tollfree/Verifications``), through the twilio SDK, with the account's credentials.

``fetch_status`` finds the number's record (none: never submitted, the number is restricted); ``submit``
creates one for a number without a record, or updates a rejected one within its edit window (Twilio
reviews it again). With the default API base URL the SDK's own host is used; any other base URL (the
stand-in) serves every Twilio host at one address.

Twilio refusing the credentials is ``InvalidInput`` on ``auth_token``; refusing the form (400/409) is
``InvalidInput`` on ``verification`` with Twilio's message; anything else is
``RetryableError("twilio_unavailable")``, answered 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.messaging.v1.tollfree_verification import TollfreeVerificationInstance

from services.api.errors import InvalidInput, NotFound
from services.api.twilio_console import console_client, linked_credentials_refused, twilio_unavailable

# Twilio's status -> the sender's verification state that sending is checked against (senders.verification).
SENDER_STATE = {"NOT_SUBMITTED": "restricted", "PENDING_REVIEW": "pending", "IN_REVIEW": "pending",
                "TWILIO_APPROVED": "verified", "TWILIO_REJECTED": "rejected"}
FORM_FIELDS = ("business_name", "business_website", "notification_email", "use_case_categories",
               "use_case_summary", "production_message_sample", "opt_in_type", "opt_in_image_urls",
               "message_volume", "privacy_policy_url")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VerificationStatus:
    status: str  # NOT_SUBMITTED or one of Twilio's four
    verification_sid: str | None = None
    rejection_reason: str | None = None
    rejection_reasons: list[dict[str, Any]] = field(default_factory=list)
    error_code: int | None = None
    edit_allowed: bool = False
    edit_expiration: datetime | None = None

    @property
    def sender_state(self) -> str:
        return SENDER_STATE[self.status]


NOT_SUBMITTED = VerificationStatus("NOT_SUBMITTED")


async def fetch_status(api_base_url: str, account_sid: str, auth_token: str, phone: str) -> VerificationStatus:
    return await asyncio.to_thread(_with_client, api_base_url, account_sid, auth_token,
                                   lambda client: _fetch(client, phone))


async def submit(api_base_url: str, account_sid: str, auth_token: str, phone: str,
                 form: dict[str, Any]) -> VerificationStatus:
    """Create the number's verification, or update (resubmit) its rejected one."""
    return await asyncio.to_thread(_with_client, api_base_url, account_sid, auth_token,
                                   lambda client: _submit(client, phone, form))


def _fetch(client: Client, phone: str) -> VerificationStatus:
    number_sid = _number_sid(client, phone)
    records = client.messaging.v1.tollfree_verifications.list(tollfree_phone_number_sid=number_sid, limit=1)
    return _status(records[0]) if records else NOT_SUBMITTED


def _submit(client: Client, phone: str, form: dict[str, Any]) -> VerificationStatus:
    number_sid = _number_sid(client, phone)
    verifications = client.messaging.v1.tollfree_verifications
    records = verifications.list(tollfree_phone_number_sid=number_sid, limit=1)
    given = {k: v for k, v in form.items() if k in FORM_FIELDS and v not in (None, "", [])}
    if not records:
        return _status(verifications.create(tollfree_phone_number_sid=number_sid, **given))
    if not records[0].edit_allowed:
        raise InvalidInput("verification", "verification_not_editable",
                           f"Twilio's verification of {phone} is {records[0].status} and cannot be edited: "
                           "only a rejected one can, within its edit window")
    return _status(verifications(records[0].sid).update(edit_reason="resubmitted from Textpulse", **given))


def _number_sid(client: Client, phone: str) -> str:
    numbers = client.incoming_phone_numbers.list(phone_number=phone, limit=1)
    if not numbers:
        raise NotFound("number_not_in_account", f"{phone} is not a number of the linked Twilio account")
    sid: str = numbers[0].sid
    return sid


def _status(record: TollfreeVerificationInstance) -> VerificationStatus:
    return VerificationStatus(
        status=str(record.status), verification_sid=record.sid, rejection_reason=record.rejection_reason,
        rejection_reasons=list(record.rejection_reasons or []), error_code=record.error_code,
        edit_allowed=bool(record.edit_allowed), edit_expiration=record.edit_expiration)


def _with_client(api_base_url: str, account_sid: str, auth_token: str, work: Callable[[Client], T]) -> T:
    with console_client(api_base_url, account_sid, auth_token) as client:
        try:
            return work(client)
        except TwilioRestException as exc:
            if exc.status in (401, 403):
                raise linked_credentials_refused() from None
            if exc.status in (400, 409):
                raise InvalidInput("verification", "twilio_refused_verification",
                                   f"Twilio refused the verification: {exc.msg}") from None
            raise twilio_unavailable("answer", exc.status) from None
