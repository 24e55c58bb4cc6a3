"""JSON of the account, its incoming phone numbers, Messaging Services and toll-free verifications.

2010-04-01 resources use RFC 2822 dates and relative ``uri``s; v1 (messaging.twilio.com) resources use
ISO 8601 dates and absolute ``url``s (docs/twilio.md#toll-free-senders,
docs/twilio.md#accounts-numbers-and-services). A toll-free number's verification record follows its state:
one submitted through the API is kept in ``verifications``; otherwise it follows the number's configured
state (``implied_submission``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from standins.twilio.config import derived_sid
from standins.twilio.formats import iso8601, rfc2822
from standins.twilio.messages import API_VERSION
from standins.twilio.senders import Number, Service
from standins.twilio.state import TwilioState
from standins.twilio.verifications import OPTIONAL, REQUIRED, Submission

VERIFICATION_STATUS = {"verified": "TWILIO_APPROVED", "pending": "IN_REVIEW", "rejected": "TWILIO_REJECTED"}


def account(state: TwilioState, sid: str | None = None) -> dict[str, Any]:
    """The main account, or one of ``other_accounts`` by its SID (the caller's own: auth checked it)."""
    sid = sid or state.config.account_sid
    other = next((a for a in state.config.other_accounts if a.account_sid == sid), None)
    base = f"/{API_VERSION}/Accounts/{sid}"
    return {
        "auth_token": other.auth_token if other else state.config.auth_token,
        "date_created": rfc2822(state.started_at),
        "date_updated": rfc2822(state.started_at),
        "friendly_name": other.friendly_name if other else state.friendly_name,
        "owner_account_sid": sid,
        "sid": sid,
        "status": "active" if other else state.account_status,
        "subresource_uris": {
            "messages": f"{base}/Messages.json",
            "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            "balance": f"{base}/Balance.json",
        },
        "type": other.account_type if other else state.account_type,
        "uri": f"{base}.json",
    }


def incoming_number(state: TwilioState, number: Number) -> dict[str, Any]:
    sid = state.config.account_sid
    return {
        "account_sid": sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_created),
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": number.sms_url or "",
        "status": "in-use",
        "status_callback": "",
        "status_callback_method": "POST",
        "type": "toll-free" if number.toll_free else "local",
        "uri": f"/{API_VERSION}/Accounts/{sid}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_url": "",
    }


def service(state: TwilioState, svc: Service, base_url: str) -> dict[str, Any]:
    url = f"{base_url}/v1/Services/{svc.sid}"
    return {
        "account_sid": state.config.account_sid,
        "area_code_geomatch": True,
        "date_created": iso8601(svc.date_created),
        "date_updated": iso8601(svc.date_created),
        "fallback_method": "POST",
        "fallback_to_long_code": False,
        "fallback_url": None,
        "friendly_name": svc.friendly_name,
        "inbound_method": "POST",
        "inbound_request_url": svc.inbound_request_url,
        "links": {
            "phone_numbers": f"{url}/PhoneNumbers",
            "short_codes": f"{url}/ShortCodes",
            "alpha_senders": f"{url}/AlphaSenders",
        },
        "mms_converter": True,
        "scan_message_content": "inherit",
        "sid": svc.sid,
        "smart_encoding": svc.smart_encoding,
        "status_callback": svc.status_callback,
        "sticky_sender": svc.sticky_sender,
        "synchronous_validation": True,
        "url": url,
        "usecase": "marketing",
        "use_inbound_webhook_on_number": svc.use_inbound_webhook_on_number,
        "validity_period": svc.validity_period,
    }


def service_number(state: TwilioState, svc: Service, number: Number, base_url: str) -> dict[str, Any]:
    return {
        "account_sid": state.config.account_sid,
        "capabilities": ["SMS", "MMS", "Voice"],
        "country_code": "US",
        "date_created": iso8601(number.date_created),
        "date_updated": iso8601(number.date_created),
        "phone_number": number.phone_number,
        "service_sid": svc.sid,
        "sid": number.sid,
        "url": f"{base_url}/v1/Services/{svc.sid}/PhoneNumbers/{number.sid}",
    }


def verification(state: TwilioState, number: Number, base_url: str) -> dict[str, Any] | None:
    """The toll-free verification record of ``number``, or None (not toll-free, or never submitted): the
    submission made through the API if any (``verifications``), else the one its configured state implies."""
    if not number.toll_free:
        return None
    submission = state.verifications.by_phone.get(number.phone_number) or implied_submission(state, number)
    if submission is None:
        return None
    fields = {key: None for key in (*REQUIRED.values(), *OPTIONAL.values()) if key != "edit_reason"}
    fields |= {k: v for k, v in submission.fields.items() if k != "edit_reason"}
    reasons = ([{"reason": submission.rejection_reason, "error_code": submission.error_code}]
               if submission.rejection_reason else None)
    return {
        "sid": submission.sid,
        "account_sid": state.config.account_sid,
        "trust_product_sid": None,
        "regulated_item_sid": None,
        "date_created": iso8601(submission.date_created),
        "date_updated": iso8601(submission.date_updated),
        **fields,
        "tollfree_phone_number_sid": number.sid,
        "tollfree_phone_number": number.phone_number,
        "status": submission.status,
        "url": f"{base_url}/v1/Tollfree/Verifications/{submission.sid}",
        "rejection_reason": submission.rejection_reason,
        "rejection_reasons": reasons,
        "error_code": submission.error_code,
        "edit_expiration": iso8601(submission.edit_expiration) if submission.edit_expiration else None,
        "edit_allowed": submission.edit_allowed,
        "resource_links": {},
    }


def implied_submission(state: TwilioState, number: Number) -> Submission | None:
    """The record a configured verification state implies: verified -> TWILIO_APPROVED, pending -> IN_REVIEW,
    rejected -> TWILIO_REJECTED (editable for 7 days from the number's creation), restricted -> none."""
    status = VERIFICATION_STATUS.get(number.verification)
    if status is None:
        return None
    submission = Submission(
        sid=derived_sid("HH", state.config.account_sid, number.phone_number),
        phone_number=number.phone_number,
        fields={
            "business_name": state.friendly_name,
            "business_website": "https://textpulse.example.org",
            "notification_email": "compliance@textpulse.example.org",
            "use_case_categories": ["CHARITY_NONPROFIT"],
            "use_case_summary": "Membership renewals, event reminders and chapter news for association members.",
            "production_message_sample": "Hi Zoë, your membership renews on 1 July. Reply STOP to opt out.",
            "opt_in_image_urls": ["https://textpulse.example.org/opt-in.png"],
            "opt_in_type": "WEB_FORM",
            "message_volume": "10,000",
        },
        date_created=number.date_created,
        date_updated=number.date_created,
    )
    submission.review(status, number.date_created)
    return submission


def v1_page(
    key: str,
    records: list[dict[str, Any]],
    url: str,
    filters: list[tuple[str, str]],
    page: int,
    page_size: int,
    more: bool,
) -> dict[str, Any]:
    """A v1 list page: the records under ``key`` and a ``meta`` envelope with absolute URLs."""

    def link(n: int) -> str:
        return f"{url}?{urlencode([*filters, ('PageSize', page_size), ('Page', n)])}"

    return {
        key: records,
        "meta": {
            "first_page_url": link(0),
            "key": key,
            "next_page_url": link(page + 1) if more else None,
            "page": page,
            "page_size": page_size,
            "previous_page_url": link(page - 1) if page > 0 else None,
            "url": link(page),
        },
    }
