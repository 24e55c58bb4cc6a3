"""The stand-in's toll-free Verifications resource through the official SDK: create, review, reject, edit."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

RESTRICTED = "+18885550104"  # configured restricted: never submitted
REJECTED = "+18885550105"


def _form() -> dict[str, object]:
    return {
        "business_name": "Ohio Nurses Association",
        "business_website": "https://ona.example.org",
        "notification_email": "compliance@ona.example.org",
        "use_case_categories": ["CHARITY_NONPROFIT", "ACCOUNT_NOTIFICATIONS"],
        "use_case_summary": "Renewal reminders and event news for members who opted in on their profile.",
        "production_message_sample": "ONA: your membership renews 1 July. Reply STOP to opt out.",
        "opt_in_image_urls": ["https://ona.example.org/opt-in-profile.png"],
        "opt_in_type": "WEB_FORM",
        "message_volume": "10,000",
    }


def _number_sid(sdk: Client, phone: str) -> str:
    sid: str = sdk.incoming_phone_numbers.list(phone_number=phone)[0].sid
    return sid


def test_a_submission_is_reviewed_and_approved(sdk: Client, control: httpx.Client) -> None:
    created = sdk.messaging.v1.tollfree_verifications.create(
        tollfree_phone_number_sid=_number_sid(sdk, RESTRICTED), privacy_policy_url="https://ona.example.org/privacy",
        **_form())  # type: ignore[arg-type]

    assert created.sid.startswith("HH") and created.status == "PENDING_REVIEW"
    assert created.use_case_categories == ["CHARITY_NONPROFIT", "ACCOUNT_NOTIFICATIONS"]
    assert created.privacy_policy_url == "https://ona.example.org/privacy"
    assert created.tollfree_phone_number == RESTRICTED and created.edit_allowed is False
    assert control.put(f"/verifications/{RESTRICTED}", json={"status": "IN_REVIEW"}).status_code == 200
    assert sdk.messaging.v1.tollfree_verifications(created.sid).fetch().status == "IN_REVIEW"
    assert control.put(f"/verifications/{RESTRICTED}", json={"status": "TWILIO_APPROVED"}).status_code == 200
    listed = sdk.messaging.v1.tollfree_verifications.list(status="TWILIO_APPROVED")
    assert created.sid in {v.sid for v in listed}


def test_a_second_submission_for_a_number_is_refused(sdk: Client) -> None:
    approved = _number_sid(sdk, "+18885550100")
    with pytest.raises(TwilioRestException) as refused:
        sdk.messaging.v1.tollfree_verifications.create(tollfree_phone_number_sid=approved,
                                                       **_form())  # type: ignore[arg-type]
    assert refused.value.status == 409


def test_a_submission_missing_a_required_field_is_refused(sdk: Client) -> None:
    form = _form() | {"opt_in_image_urls": []}
    with pytest.raises(TwilioRestException) as refused:
        sdk.messaging.v1.tollfree_verifications.create(tollfree_phone_number_sid=_number_sid(sdk, RESTRICTED),
                                                       **form)  # type: ignore[arg-type]
    assert refused.value.status == 400 and "OptInImageUrls" in refused.value.msg
    assert sdk.messaging.v1.tollfree_verifications.list(tollfree_phone_number_sid=_number_sid(sdk, RESTRICTED)) == []


def test_a_rejection_carries_reasons_and_an_edit_window_and_an_edit_resubmits(sdk: Client,
                                                                               control: httpx.Client) -> None:
    reviewed = control.put(f"/verifications/{REJECTED}", json={
        "status": "TWILIO_REJECTED", "rejection_reason": "Opt-in image does not show the consent language.",
        "error_code": 30509})
    (record,) = sdk.messaging.v1.tollfree_verifications.list(tollfree_phone_number_sid=_number_sid(sdk, REJECTED))

    assert reviewed.json()["edit_allowed"] is True
    assert (record.status, record.error_code, record.edit_allowed) == ("TWILIO_REJECTED", 30509, True)
    assert record.rejection_reasons == [{"reason": "Opt-in image does not show the consent language.",
                                         "error_code": 30509}]
    assert record.edit_expiration is not None and record.edit_expiration > record.date_updated
    edited = sdk.messaging.v1.tollfree_verifications(record.sid).update(
        opt_in_image_urls=["https://ona.example.org/opt-in-v2.png"], edit_reason="new screenshot")
    assert (edited.status, edited.opt_in_image_urls, edited.edit_allowed) == (
        "PENDING_REVIEW", ["https://ona.example.org/opt-in-v2.png"], False)
    assert edited.rejection_reason is None and edited.business_name == record.business_name


def test_an_edit_is_refused_outside_the_window_or_when_not_rejected(sdk: Client, control: httpx.Client) -> None:
    control.put(f"/verifications/{REJECTED}", json={"status": "TWILIO_REJECTED", "edit_window_s": 0})
    (expired,) = sdk.messaging.v1.tollfree_verifications.list(tollfree_phone_number_sid=_number_sid(sdk, REJECTED))
    (approved,) = sdk.messaging.v1.tollfree_verifications.list(
        tollfree_phone_number_sid=_number_sid(sdk, "+18885550100"))

    for sid in (expired.sid, approved.sid):
        with pytest.raises(TwilioRestException) as refused:
            sdk.messaging.v1.tollfree_verifications(sid).update(message_volume="1,000")
        assert refused.value.status == 400
