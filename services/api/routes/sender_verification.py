"""``/api/v1/senders/{sender_id}/verification``: a toll-free sender's verification with Twilio (admins only).

``GET`` answers what Twilio last reported (refreshed on a schedule by ``refresh_due``, and on demand with
``POST .../refresh``) and the submission form, prefilled: the form last submitted for this number, else the
organisation's last one, else its settings (name, first alert e-mail). ``POST`` validates the form and
submits it to Twilio: a new verification for a number Twilio has none for, or a resubmission of a rejected
one while Twilio still allows edits. Each refresh also sets the sender's own verification state, which
sending is checked against (``libs/common/send_checks.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import Connection, transaction
from libs.common.errors import RetryableError
from libs.common.secret_store import SecretStore
from services.api import audit, settings_db, tollfree_verifications, verification_db
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PoolDep, SecretsDep, WebDep
from services.api.errors import InvalidInput, NotFound
from services.api.routes.settings import Email, Url

router = APIRouter(prefix="/senders/{sender_id}/verification", tags=["settings"])

# Twilio's use-case categories for toll-free verification.
UseCase = Literal["TWO_FACTOR_AUTHENTICATION", "ACCOUNT_NOTIFICATIONS", "CUSTOMER_CARE", "CHARITY_NONPROFIT",
                  "DELIVERY_NOTIFICATIONS", "FRAUD_ALERT_MESSAGING", "EVENTS", "HIGHER_EDUCATION", "K12",
                  "MARKETING", "POLLING_AND_VOTING_NON_POLITICAL", "PUBLIC_SERVICE_ANNOUNCEMENT",
                  "SECURITY_ALERT"]
OptInType = Literal["VERBAL", "WEB_FORM", "PAPER_FORM", "VIA_TEXT", "MOBILE_QR_CODE", "IMPORT"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
# Monthly messages as Twilio's form words them: "10", "1,000", "10,000,000+".
Volume = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{1,3}(,[0-9]{3})*\+?$")]
Status = Literal["NOT_SUBMITTED", "PENDING_REVIEW", "IN_REVIEW", "TWILIO_APPROVED", "TWILIO_REJECTED"]


class VerificationForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    business_website: Url
    notification_email: Email
    use_case_categories: list[UseCase] = Field(min_length=1, max_length=5)
    use_case_summary: Text
    production_message_sample: Text
    opt_in_type: OptInType
    opt_in_image_urls: list[Url] = Field(min_length=1, max_length=10, description="where reviewers see the opt-in "
                                         "language, e.g. a screenshot of the member profile page")
    message_volume: Volume
    privacy_policy_url: Url | None = None


class VerificationOut(BaseModel):
    sender_id: UUID
    address: str
    verification: str = Field(description="the sender's state sending is checked against")
    status: Status | None = Field(description="as Twilio last reported it; null: not checked yet")
    verification_sid: str | None = None
    rejection_reason: str | None = None
    rejection_reasons: list[dict[str, Any]] = []
    error_code: int | None = None
    edit_allowed: bool = False
    edit_expiration: datetime | None = None
    checked_at: datetime | None = None
    can_submit: bool = Field(description="a submission is possible now: never submitted, or rejected and editable")
    form: dict[str, Any] = Field(description="the submission form, prefilled")


@router.get("", summary="A toll-free sender's verification as Twilio last reported it, and the prefilled form")
async def get_verification(sender_id: UUID, admin: AdminDep, pool: PoolDep) -> VerificationOut:
    async with pool.acquire() as conn:
        return await _out(conn, admin.org.id, sender_id)


@router.post("/refresh", summary="Ask Twilio for the sender's verification now",
             responses={503: {"description": "Twilio could not answer; try again"}})
async def refresh_verification(sender_id: UUID, admin: AdminDep, pool: PoolDep, web: WebDep,
                               secrets: SecretsDep) -> VerificationOut:
    async with pool.acquire() as conn:
        address = await _toll_free_address(conn, admin.org.id, sender_id)
        credentials = await _credentials(conn, secrets, admin.org.id)
    status = await tollfree_verifications.fetch_status(web.twilio_api_base_url, *credentials, address)
    async with transaction(pool) as conn:
        await verification_db.save(conn, admin.org.id, sender_id, status)
        return await _out(conn, admin.org.id, sender_id)


@router.post("", summary="Submit (or resubmit) the sender's toll-free verification to Twilio",
             responses={422: {"description": "the form is invalid, or Twilio refused it"},
                        503: {"description": "Twilio could not answer; try again"}})
async def submit_verification(sender_id: UUID, body: VerificationForm, admin: AdminDep, caller: CallerDep,
                              pool: PoolDep, web: WebDep, secrets: SecretsDep) -> VerificationOut:
    form = body.model_dump(exclude_none=True)
    async with pool.acquire() as conn:
        address = await _toll_free_address(conn, admin.org.id, sender_id)
        credentials = await _credentials(conn, secrets, admin.org.id)
    # Sent to Twilio outside the transaction: no connection is held while Twilio answers.
    status = await tollfree_verifications.submit(web.twilio_api_base_url, *credentials, address, form)
    async with transaction(pool) as conn:
        await verification_db.save(conn, admin.org.id, sender_id, status, submitted=form)
        await audit.record(conn, caller, "sender.verification_submitted", "sender", sender_id,
                           detail={"address": address, "status": status.status, "form": form})
        return await _out(conn, admin.org.id, sender_id)


async def refresh_due(pool: asyncpg.Pool, secrets: SecretStore, api_base_url: str, *, max_age_s: float,
                      limit: int = 20) -> int:
    """The scheduled refresh: ask Twilio about senders not checked for ``max_age_s``; how many were checked.
    A sender Twilio cannot answer for now is left for the next round."""
    async with pool.acquire() as conn:
        due = await verification_db.due_for_refresh(conn, max_age_s, limit)
    checked = 0
    for org_id, sender_id in due:
        async with pool.acquire() as conn:
            row = await verification_db.sender(conn, org_id, sender_id)
            credentials = await settings_db.account_credentials(conn, secrets, org_id)
        if row is None or credentials is None:
            continue
        try:
            status = await tollfree_verifications.fetch_status(api_base_url, *credentials, row["address"])
        except (InvalidInput, NotFound, RetryableError):
            continue
        async with transaction(pool) as conn:
            await verification_db.save(conn, org_id, sender_id, status)
        checked += 1
    return checked


async def _toll_free_address(conn: Connection, org_id: UUID, sender_id: UUID) -> str:
    row = await verification_db.sender(conn, org_id, sender_id)
    if row is None:
        raise NotFound("sender_not_found", "no such sender in this organisation")
    if row["kind"] != "toll_free":
        raise InvalidInput("sender_id", "sender_not_toll_free",
                           f"{row['address']} is not a toll-free number: only toll-free numbers are verified this way")
    address: str = row["address"]
    return address


async def _credentials(conn: Connection, secrets: SecretStore, org_id: UUID) -> tuple[str, str]:
    credentials = await settings_db.account_credentials(conn, secrets, org_id)
    if credentials is None:
        raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
    return credentials


async def _out(conn: Connection, org_id: UUID, sender_id: UUID) -> VerificationOut:
    sender = await verification_db.sender(conn, org_id, sender_id)
    if sender is None:
        raise NotFound("sender_not_found", "no such sender in this organisation")
    stored = await verification_db.verification(conn, sender_id) or {}
    status = stored.get("status")
    can_submit = sender["kind"] == "toll_free" and (
        status == "NOT_SUBMITTED" or (status == "TWILIO_REJECTED" and bool(stored.get("edit_allowed"))))
    return VerificationOut(
        sender_id=sender_id, address=sender["address"], verification=sender["verification"], status=status,
        **{k: v for k, v in stored.items() if k not in ("status", "submitted")},
        can_submit=can_submit, form=await _prefill(conn, org_id, stored.get("submitted")))


async def _prefill(conn: Connection, org_id: UUID, submitted: dict[str, Any] | None) -> dict[str, Any]:
    org = await settings_db.org_settings(conn, org_id)
    emails = list(org["alert_emails"])
    defaults: dict[str, Any] = {
        "business_name": org["name"], "business_website": "", "notification_email": emails[0] if emails else "",
        "use_case_categories": ["CHARITY_NONPROFIT"], "use_case_summary": "", "production_message_sample": "",
        "opt_in_type": "WEB_FORM", "opt_in_image_urls": [], "message_volume": "", "privacy_policy_url": "",
    }
    return defaults | (submitted or await verification_db.last_submitted(conn, org_id) or {})
