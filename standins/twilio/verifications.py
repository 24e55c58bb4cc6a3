"""Toll-free verification submissions: what was sent to ``/v1/Tollfree/Verifications``, and the review.

A submission (create) starts ``PENDING_REVIEW``; the control API moves it on (``IN_REVIEW``,
``TWILIO_APPROVED``, ``TWILIO_REJECTED`` with reasons and an edit window). A rejected submission may be
edited (update) until its ``edit_expiration``, which sends it back to ``PENDING_REVIEW``. The number's own
verification state follows the status, so sends from it are blocked or not as Twilio would
(``standins.twilio.outcomes``). Numbers never submitted through the API keep the record their configured
state implies (``resources.verification``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from standins.twilio.config import Verification

STATUSES = ("PENDING_REVIEW", "IN_REVIEW", "TWILIO_APPROVED", "TWILIO_REJECTED")
NUMBER_STATE: dict[str, Verification] = {"PENDING_REVIEW": "pending", "IN_REVIEW": "pending",
                                         "TWILIO_APPROVED": "verified", "TWILIO_REJECTED": "rejected"}
EDIT_WINDOW_S = 7 * 86_400
DEFAULT_REJECTION = "Opt-in evidence does not show consent to receive texts."

# Form field -> resource field, as the SDK sends and reads them (twilio.rest.messaging.v1.tollfree_verification).
REQUIRED = {"BusinessName": "business_name", "BusinessWebsite": "business_website",
            "NotificationEmail": "notification_email", "UseCaseCategories": "use_case_categories",
            "UseCaseSummary": "use_case_summary", "ProductionMessageSample": "production_message_sample",
            "OptInImageUrls": "opt_in_image_urls", "OptInType": "opt_in_type", "MessageVolume": "message_volume"}
OPTIONAL = {"AdditionalInformation": "additional_information", "PrivacyPolicyUrl": "privacy_policy_url",
            "ExternalReferenceId": "external_reference_id", "CustomerProfileSid": "customer_profile_sid",
            "HelpMessageSample": "help_message_sample", "OptInConfirmationMessage": "opt_in_confirmation_message",
            "TermsAndConditionsUrl": "terms_and_conditions_url", "DoingBusinessAs": "doing_business_as",
            "EditReason": "edit_reason"}
LISTS = {"UseCaseCategories", "OptInImageUrls", "OptInKeywords"}
OPT_IN_TYPES = {"VERBAL", "WEB_FORM", "PAPER_FORM", "VIA_TEXT", "MOBILE_QR_CODE", "IMPORT"}


@dataclass(slots=True)
class Submission:
    sid: str
    phone_number: str
    fields: dict[str, Any]
    date_created: float
    date_updated: float
    status: str = "PENDING_REVIEW"
    rejection_reason: str | None = None
    error_code: int | None = None
    edit_expiration: float | None = None

    @property
    def edit_allowed(self) -> bool:
        return self.status == "TWILIO_REJECTED" and self.edit_expiration is not None

    def review(self, status: str, now: float, *, reason: str | None = None, error_code: int | None = None,
               edit_window_s: float = EDIT_WINDOW_S) -> None:
        self.status = status
        self.date_updated = now
        rejected = status == "TWILIO_REJECTED"
        self.rejection_reason = (reason or DEFAULT_REJECTION) if rejected else None
        self.error_code = (error_code or 30513) if rejected else None
        self.edit_expiration = now + edit_window_s if rejected else None


@dataclass(slots=True)
class Verifications:
    by_phone: dict[str, Submission] = field(default_factory=dict)

    def clear(self) -> None:
        self.by_phone.clear()

    def by_sid(self, sid: str) -> Submission | None:
        return next((s for s in self.by_phone.values() if s.sid == sid), None)


def form_fields(form: Any, *, required: bool) -> tuple[dict[str, Any], list[str]]:
    """The resource fields given in a form (lists from repeated keys), and the required ones missing."""
    fields: dict[str, Any] = {}
    missing: list[str] = []
    for name, key in (REQUIRED | OPTIONAL).items():
        values = [v for v in form.getlist(name) if v != ""]
        if not values:
            if required and name in REQUIRED:
                missing.append(name)
            continue
        fields[key] = values if name in LISTS else values[0]
    return fields, missing
