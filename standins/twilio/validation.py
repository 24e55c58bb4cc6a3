"""Checks on ``POST .../Messages.json``, in Twilio's order (docs/twilio.md#the-stand-in). Pure.

``To`` (21604 missing, 21211 invalid), then the sender (21603 missing, 21606 not owned, 21212 invalid
``From``; an alphanumeric sender ID needs no number but reaches no US or Canadian number, 21612), then
the body (21602 missing, 21617 too long), then the request options (21609 bad ``StatusCallback``, 90007
bad ``ValidityPeriod``). Suppression (21610) and queue length (21611) need the
stand-in's state and are checked by the caller afterwards. The magic ``To`` numbers
(docs/twilio.md#test-credentials) answer their errors for every credential; the magic ``From`` numbers
exist only under test credentials.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from urllib.parse import urlsplit

from libs.common.twilio_facts import alpha_sender_reaches, is_alpha_sender
from standins.twilio.errors import TwilioApiError, invalid

E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_BODY = 1600

# docs/twilio.md#test-credentials: magic To numbers (with From +15005550006) and the error each one answers.
# (code, message, HTTP status)
MAGIC_TO: dict[str, tuple[int, str, int]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number.", 400),
    "+15005550002": (
        21612,
        "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number: "
        "+15005550006 via SMS.",
        400,
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003.",
        400,
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient", 400),
    "+15005550009": (21614, "'To' number is not a valid mobile number", 400),
}
MAGIC_FROM_OK = "+15005550006"
MAGIC_FROM: dict[str, tuple[int, str, int]] = {
    "+15005550001": (
        21212,
        "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
        400,
    ),
    # A live run of the test number answered 429 (docs/twilio.md#error-codes-we-act-on).
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages", 429),
}


@dataclass(frozen=True, slots=True)
class CreateRequest:
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    validity_period: int | None
    smart_encoded: bool


def _not_owned(from_: str | None) -> TwilioApiError:
    return invalid(
        21606,
        f"The From phone number {from_} is not a valid, SMS-capable inbound phone number or short code for your "
        "account.",
    )


def _unreachable(to: str, from_: str) -> TwilioApiError:
    """What Twilio answers for an alphanumeric sender ID to a country that does not take one (the US, Canada)."""
    return invalid(
        21612,
        f"The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS.",
    )


def _check_to(to: str | None) -> str:
    if not to:
        raise invalid(21604, "A 'To' phone number is required.")
    to = to.strip()
    magic = MAGIC_TO.get(to)
    if magic is not None:
        raise invalid(magic[0], magic[1], magic[2])
    if not E164.fullmatch(to):
        raise invalid(21211, f"The 'To' number {to} is not a valid phone number.")
    return to


def _check_status_callback(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if len(url) > 4000 or parts.scheme not in {"http", "https"} or not parts.hostname or "_" in parts.hostname:
        raise invalid(21609, f"The StatusCallback URL {url} is not a valid URL.")
    return url


def _check_validity(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 36_000:
        raise invalid(90007, "Invalid ValidityPeriod: use a whole number of seconds from 1 to 36000.")
    return int(raw)


def check_create(
    form: dict[str, str],
    *,
    owned: Container[str],
    services: Container[str],
    test_credentials: bool,
) -> CreateRequest:
    """The create request in ``form`` if Twilio would accept it; raises TwilioApiError otherwise.

    ``owned`` holds the account's phone numbers, ``services`` its Messaging Service SIDs.
    """
    to = _check_to(form.get("To"))
    from_ = (form.get("From") or "").strip() or None
    service = (form.get("MessagingServiceSid") or "").strip() or None
    if from_ is None and service is None:
        raise invalid(21603, "A 'From' phone number is required.")
    if test_credentials:
        if service is not None and from_ is None:
            raise invalid(21606, "Messaging Services are not available with Test Account Credentials.")
        refusal = MAGIC_FROM.get(from_ or "")
        if refusal is not None:
            raise invalid(refusal[0], refusal[1], refusal[2])
        if from_ != MAGIC_FROM_OK:
            raise _not_owned(from_)
    else:
        if service is not None and service not in services:
            raise invalid(21701, f"The Messaging Service Sid {service} is invalid.", 404)
        if from_ is not None and is_alpha_sender(from_):
            if not alpha_sender_reaches(to):
                raise _unreachable(to, from_)
        elif from_ is not None and from_ not in owned:
            raise _not_owned(from_)
    body = form.get("Body")
    if not body:
        raise invalid(21602, "Message body is required.")
    if len(body) > MAX_BODY:
        raise invalid(21617, "The concatenated message body exceeds the 1600 character limit.")
    return CreateRequest(
        to=to,
        from_=from_,
        messaging_service_sid=service,
        body=body,
        status_callback=_check_status_callback(form.get("StatusCallback")),
        validity_period=_check_validity(form.get("ValidityPeriod")),
        smart_encoded=(form.get("SmartEncoded") or "").lower() == "true",
    )
