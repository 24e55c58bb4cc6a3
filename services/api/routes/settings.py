"""``/api/v1/settings``: the SMS account, country and general settings (admins only), and the senders.

Secrets are write-only: the Twilio auth token, the API key secret and the webhook SharedKey secret can
be set or replaced, and the answer only says whether one is set. A SharedKey (which Twilio may sign the
account's webhooks with instead of the auth token) is either created with Twilio from here or entered as
created in the Twilio Console. Every change answers with the whole settings document, so a
page can redraw from it. A per-campaign segment limit above 30,000 is accepted with a warning: the
usual range is 15,000-30,000, and a higher limit is more often a typo than a plan.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import Connection, transaction
from libs.common.errors import ConfigurationError
from libs.common.links import LinkError, check_base_url
from libs.common.phone import Normalised, normalise, region_for_prefix
from libs.common.twilio_facts import TOLL_FREE_SEGMENTS_PER_SECOND
from services.api import audit, dashboard_db, db, settings_db, twilio_accounts, twilio_shared_keys
from services.api.audit import Caller, CallerDep
from services.api.deps import AdminDep, OrgDep, PoolDep, SecretsDep, WebDep
from services.api.errors import Conflict, InvalidInput, NotFound
from services.api.webhook_url import check_webhook_base_url

router = APIRouter(prefix="/settings", tags=["settings"])
senders_router = APIRouter(prefix="/senders", tags=["settings"])

RECOMMENDED_SEGMENT_LIMITS = (15_000, 30_000)
MAX_ALERT_EMAILS = 20

Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                        pattern=r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")]
AccountSid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^AC[0-9a-f]{32}$")]
ApiKeySid = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^SK[0-9a-f]{32}$")]
# Twilio's tokens and secrets are printable ASCII; the SDK sends them in a Basic auth header, which other
# characters would break.
Secret = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=200, pattern=r"^[!-~]+$")]
# Twilio's SharedKey ids are TypeIDs (webhooks_sharedkey_<26 characters>); the check only keeps out what
# cannot appear in the X-Twilio-Webhooks-Signature-Settings header. The same rule is in migration 0025.
SharedKeyId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,100}$")]


def _has_letter(value: str) -> str:
    if value and not any(c.isalpha() for c in value):
        raise ValueError("an alphanumeric sender ID needs at least one letter")
    return value


# Up to 11 letters, digits, spaces and + _ & -, not only digits (Twilio's rule; see migration 0002).
AlphaSender = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9 +_&-]{0,11}$"),
                        AfterValidator(_has_letter)]
# The scheme and host rules are services/api/webhook_url.py's (they depend on TEXTPULSE_ENV).
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^https?://\S+$")]


class SenderOut(BaseModel):
    id: UUID
    address: str
    kind: Literal["toll_free", "long_code", "short_code", "messaging_service"]
    verification: Literal["verified", "pending", "restricted", "rejected"]
    is_default: bool
    segments_per_second: float = Field(description="the pace the dispatcher keeps for this sender")


# Whole segments per second, as Twilio sells a toll-free number's throughput (3 by default, up to 150).
SegmentsPerSecond = Annotated[int, Field(ge=TOLL_FREE_SEGMENTS_PER_SECOND.start,
                                         le=TOLL_FREE_SEGMENTS_PER_SECOND.stop - 1,
                                         description="segments per second, 1 to 150 (Twilio's default is 3)")]


class SenderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segments_per_second: SegmentsPerSecond


class SmsAccountOut(BaseModel):
    linked: bool
    account_sid: str | None = None
    friendly_name: str = ""
    account_type: Literal["Trial", "Full"] | None = None
    alpha_sender_id: str | None = None
    max_segments: int | None = None
    test_mode: bool = False
    webhook_base_url: str | None = None
    auth_token_set: bool = Field(default=False, description="the token itself is never returned")
    api_key_sid: str | None = None
    api_key_secret_set: bool = Field(default=False, description="the secret itself is never returned")
    webhook_shared_key_id: str | None = Field(default=None, description="the SharedKey that signs webhooks, if any")
    webhook_shared_key_set: bool = Field(default=False, description="the secret itself is never returned")


class CountryOut(BaseModel):
    default_country_prefix: str
    region: str = Field(description="the country the prefix belongs to (ISO 3166)")
    example_national: str = Field(description="a number written without +, as members type it")
    example_e164: str | None = Field(description="what it becomes with the default prefix")


class GeneralOut(BaseModel):
    time_zone: str
    default_sender_id: UUID | None
    campaign_segment_limit: int
    recommended_segment_limits: tuple[int, int] = RECOMMENDED_SEGMENT_LIMITS
    alert_emails: list[str]
    retention_webhook_days: int = Field(description="days raw Twilio webhooks and status callbacks are kept")
    retention_reply_days: int = Field(description="days the text of members' replies is kept")
    retention_body_days: int = Field(description="days rendered texts and merge values are kept after a run ends")
    retention_csv_days: int = Field(description="days an uploaded CSV's rows are kept")
    run_member_cap: int | None = Field(description="most members one run's audience may have; a larger one is "
                                                   "refused. null: the platform's default (250,000 unless set)")
    revocation_confirmation: bool = Field(description="text one confirmation to a member who revokes consent in "
                                                      "their own words (Twilio answers STOP itself)")
    revocation_confirmation_text: str = Field(description="its wording: no marketing, no link")
    require_approval: bool = Field(description="campaigns are approved by someone other than their authors before "
                                               "they are scheduled or sent")
    reply_digests: bool = Field(default=False, description="e-mail each campaign's contact the members' replies "
                                "waiting in the Inbox, at most one e-mail a campaign every 15 minutes")
    short_link_base_url: str | None = Field(default=None, description="the organisation's own short domain for "
                                            "tracked links (https://go.example.org); null: the platform's")


class ImisOut(BaseModel):
    linked: bool
    base_url: str | None = Field(default=None, description="null: the deployment's iMIS site")
    username: str | None = None
    query_endpoint: Literal["query", "iqa"] | None = Field(
        default=None, description="query: /api/Query (iMIS 20.3.77 and later); iqa: the deprecated /api/IQA")
    endpoint_checked_at: datetime | None = Field(default=None, description="when the endpoint was found; "
                                                 "null: linked before it was checked, so /api/IQA is used")


class SettingsOut(BaseModel):
    organisation: str
    sms_account: SmsAccountOut
    imis: ImisOut
    country: CountryOut
    general: GeneralOut
    senders: list[SenderOut]
    warnings: list[str]


class SmsAccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    friendly_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    account_type: Literal["Trial", "Full"] | None = None
    alpha_sender_id: AlphaSender | None = Field(default=None, description="null or '' removes it")
    max_segments: int | None = Field(default=None, gt=0, le=10_000_000, description="null removes the cap")
    test_mode: bool | None = None
    webhook_base_url: Url | None = None


class CredentialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: AccountSid
    auth_token: Secret
    webhook_base_url: Url | None = Field(default=None, description="default: the current one, or this API's URL")


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key_sid: ApiKeySid
    api_key_secret: Secret


class SharedKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shared_key_id: SharedKeyId
    shared_key_secret: Secret


class SharedKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    friendly_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = "Textpulse webhooks"


class CountryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_country_prefix: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9][0-9]{0,2}$")]


# Retention settings (migration 0027, services/usage/retention.py): a day up to ten years, as the column's CHECK.
RetentionDays = Annotated[int, Field(ge=1, le=3650, description="days, 1 to 3650")]
RETENTION_FIELDS = ("retention_webhook_days", "retention_reply_days", "retention_body_days", "retention_csv_days")
# The one text a revocation may get (migration 0042): short, and nothing to click.
ConfirmationText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
_LINK = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(com|org|net|io|ly|co)\b", re.IGNORECASE)


class GeneralPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    default_sender_id: UUID | None = None
    campaign_segment_limit: int | None = Field(default=None, gt=0, le=10_000_000)
    alert_emails: list[Email] | None = Field(default=None, max_length=MAX_ALERT_EMAILS)
    retention_webhook_days: RetentionDays | None = None
    retention_reply_days: RetentionDays | None = None
    retention_body_days: RetentionDays | None = None
    retention_csv_days: RetentionDays | None = None
    run_member_cap: int | None = Field(default=None, ge=1, le=10_000_000,
                                       description="null: back to the platform's default")
    revocation_confirmation: bool | None = None
    revocation_confirmation_text: ConfirmationText | None = None
    require_approval: bool | None = None
    reply_digests: bool | None = None
    short_link_base_url: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="http(s)://host[:port] of the organisation's short domain; null: the platform's")


@router.get("", summary="Every setting (secrets only as set / not set)")
async def get_settings(admin: AdminDep, pool: PoolDep) -> SettingsOut:
    async with pool.acquire() as conn:
        return await settings_out(conn, admin.org.id)


@router.patch("/sms-account", summary="Edit the SMS account's details")
async def patch_sms_account(body: SmsAccountPatch, admin: AdminDep, caller: CallerDep, pool: PoolDep,
                            web: WebDep) -> SettingsOut:
    changes = body.model_dump(exclude_unset=True)
    for required in ("friendly_name", "account_type", "test_mode", "webhook_base_url"):
        if required in changes and changes[required] is None:
            raise InvalidInput(required, "value_required", "may not be null")
    if "webhook_base_url" in changes:
        changes["webhook_base_url"] = check_webhook_base_url(changes["webhook_base_url"], env=web.env)
    if changes.get("alpha_sender_id") == "":
        changes["alpha_sender_id"] = None
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        if not await settings_db.lock_sms_account(conn, admin.org.id):
            raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
        current = await settings_db.sms_account(conn, admin.org.id)
        await settings_db.update_sms_account(conn, admin.org.id, (current or {}) | changes)
        return await audited(conn, caller, "settings.sms_account_changed", before)


@router.put("/sms-account/credentials", summary="Link a Twilio account, or replace its auth token",
            responses={409: {"description": "another organisation has linked this Twilio account"},
                       422: {"description": "Twilio refused the credentials"},
                       503: {"description": "Twilio could not check them; try again"}})
async def link_account(body: CredentialsIn, admin: AdminDep, caller: CallerDep, pool: PoolDep, web: WebDep,
                       secrets: SecretsDep) -> SettingsOut:
    given_hook = check_webhook_base_url(body.webhook_base_url, env=web.env) if body.webhook_base_url else None
    async with pool.acquire() as conn:
        if await settings_db.account_linked_elsewhere(conn, admin.org.id, body.account_sid):
            raise _account_in_use()
        current = await settings_db.sms_account(conn, admin.org.id)
    # Checked with Twilio outside the transaction: no connection is held while Twilio answers.
    await twilio_accounts.verify_credentials(web.twilio_api_base_url, body.account_sid, body.auth_token)
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        hook = given_hook or (current or {}).get("webhook_base_url") or web.public_base_url
        try:
            async with conn.transaction():
                await settings_db.link_sms_account(conn, secrets, admin.org.id, body.account_sid, body.auth_token, hook)
        except asyncpg.UniqueViolationError:
            raise _account_in_use() from None
        return await audited(conn, caller, "settings.twilio_account_linked", before)


def _account_in_use() -> Conflict:
    return Conflict("account_in_use", "that Twilio account is linked to another organisation: each Twilio account "
                    "can belong to one organisation only")


@router.put("/sms-account/api-key", summary="Set or replace the Twilio API key (the secret is write-only)")
async def set_api_key(body: ApiKeyIn, admin: AdminDep, caller: CallerDep, pool: PoolDep,
                      secrets: SecretsDep) -> SettingsOut:
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        if not await settings_db.lock_sms_account(conn, admin.org.id):
            raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
        await settings_db.set_api_key(conn, secrets, admin.org.id, body.api_key_sid, body.api_key_secret)
        return await audited(conn, caller, "settings.twilio_api_key_set", before)


@router.delete("/sms-account/api-key", summary="Remove the Twilio API key (the auth token is used instead)")
async def clear_api_key(admin: AdminDep, caller: CallerDep, pool: PoolDep) -> SettingsOut:
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        await settings_db.clear_api_key(conn, admin.org.id)
        return await audited(conn, caller, "settings.twilio_api_key_removed", before)


@router.put("/sms-account/webhook-shared-key",
            summary="Enter a SharedKey created in the Twilio Console (the secret is write-only)")
async def set_webhook_shared_key(body: SharedKeyIn, admin: AdminDep, caller: CallerDep, pool: PoolDep,
                                 secrets: SecretsDep) -> SettingsOut:
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        if not await settings_db.lock_sms_account(conn, admin.org.id):
            raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
        await settings_db.set_webhook_shared_key(conn, secrets, admin.org.id, body.shared_key_id,
                                                 body.shared_key_secret)
        return await audited(conn, caller, "settings.webhook_shared_key_set", before)


@router.post("/sms-account/webhook-shared-key",
             summary="Create a SharedKey with Twilio and keep it (its secret is never shown)",
             responses={422: {"description": "Twilio refused the linked account's credentials"},
                        503: {"description": "Twilio could not create it; try again"}})
async def create_webhook_shared_key(admin: AdminDep, caller: CallerDep, pool: PoolDep, web: WebDep, secrets: SecretsDep,
                                    body: SharedKeyCreate | None = None) -> SettingsOut:
    async with pool.acquire() as conn:
        credentials = await settings_db.account_credentials(conn, secrets, admin.org.id)
    if credentials is None:
        raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
    # Created with Twilio outside the transaction: no connection is held while Twilio answers.
    friendly_name = (body or SharedKeyCreate()).friendly_name
    key = await twilio_shared_keys.create_shared_key(web.twilio_api_base_url, *credentials, friendly_name)
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        if not await settings_db.lock_sms_account(conn, admin.org.id):
            raise NotFound("sms_account_missing", "no Twilio account is linked yet: link one first")
        await settings_db.set_webhook_shared_key(conn, secrets, admin.org.id, key.key_id, key.secret)
        return await audited(conn, caller, "settings.webhook_shared_key_created", before)


@router.delete("/sms-account/webhook-shared-key",
               summary="Forget the SharedKey (webhooks must then be signed with the auth token)")
async def clear_webhook_shared_key(admin: AdminDep, caller: CallerDep, pool: PoolDep) -> SettingsOut:
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        await settings_db.clear_webhook_shared_key(conn, admin.org.id)
        return await audited(conn, caller, "settings.webhook_shared_key_removed", before)


@router.patch("/country", summary="Set the default country prefix for numbers written without +")
async def patch_country(body: CountryPatch, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> SettingsOut:
    try:
        region_for_prefix(body.default_country_prefix)
    except ConfigurationError as exc:
        raise InvalidInput("default_country_prefix", "prefix_unknown", exc.message) from None
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        current = await settings_db.org_settings(conn, admin.org.id)
        await settings_db.update_org_settings(conn, admin.org.id, current | body.model_dump())
        return await audited(conn, caller, "settings.country_changed", before)


@router.patch("/general",
              summary="Default sender, per-campaign segment limit, alert e-mails, time zone, retention, member cap")
async def patch_general(body: GeneralPatch, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> SettingsOut:
    changes = body.model_dump(exclude_unset=True)
    for required in ("time_zone", "default_sender_id", "campaign_segment_limit", "alert_emails", "require_approval",
                     "reply_digests", *RETENTION_FIELDS, "revocation_confirmation", "revocation_confirmation_text"):
        if required in changes and changes[required] is None:
            raise InvalidInput(required, "value_required", "is required: it cannot be left empty")
    if "time_zone" in changes:
        try:
            ZoneInfo(changes["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("time_zone", "time_zone_unknown", "is not an IANA time zone") from None
    if _LINK.search(changes.get("revocation_confirmation_text") or ""):
        raise InvalidInput("revocation_confirmation_text", "confirmation_has_link",
                           "must not hold a link: a confirmation of a revocation carries no marketing")
    if "alert_emails" in changes:
        changes["alert_emails"] = list(dict.fromkeys(e.lower() for e in changes["alert_emails"]))
    if changes.get("short_link_base_url"):
        try:
            changes["short_link_base_url"] = check_base_url(changes["short_link_base_url"])
        except LinkError as exc:
            raise InvalidInput("short_link_base_url", exc.code, exc.message) from None
    elif "short_link_base_url" in changes:
        changes["short_link_base_url"] = None
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        sender_id = changes.pop("default_sender_id", None)
        if sender_id is not None:
            if not await db.sender_belongs_to(conn, admin.org.id, sender_id):
                raise InvalidInput("default_sender_id", "sender_not_owned", "is not one of this account's senders")
            await settings_db.set_default_sender(conn, admin.org.id, sender_id)
        current = await settings_db.org_settings(conn, admin.org.id)
        await settings_db.update_org_settings(conn, admin.org.id, current | changes)
        return await audited(conn, caller, "settings.general_changed", before)


@senders_router.get("", summary="The organisation's senders (numbers and Messaging Services)")
async def list_senders(org: OrgDep, pool: PoolDep) -> list[SenderOut]:
    async with pool.acquire() as conn:
        return [SenderOut(**row) for row in await dashboard_db.senders(conn, org.id)]


@senders_router.patch("/{sender_id}", summary="Set a sender's pace in segments per second (admins only)",
                      responses={404: {"description": "not one of this organisation's senders"}})
async def patch_sender(sender_id: UUID, body: SenderPatch, admin: AdminDep, caller: CallerDep,
                       pool: PoolDep) -> SenderOut:
    # Pace above what Twilio sells the number fills its queue and ends in 21611 or 30001: only the
    # number's real throughput (the default 3, or the High-Throughput Toll-Free rate bought) belongs here.
    async with transaction(pool) as conn:
        before = {s["id"]: s for s in await dashboard_db.senders(conn, admin.org.id)}.get(sender_id)
        if before is None or not await settings_db.set_sender_rate(conn, admin.org.id, sender_id,
                                                                   body.segments_per_second):
            raise NotFound("sender_missing", f"{sender_id} is not one of this organisation's senders")
        after = next(s for s in await dashboard_db.senders(conn, admin.org.id) if s["id"] == sender_id)
        await audit.record(conn, caller, "sender.rate_changed", "sender", sender_id,
                           before={"segments_per_second": before["segments_per_second"]},
                           after={"segments_per_second": after["segments_per_second"]})
        return SenderOut(**after)


# ---------------------------------------------------------------------------------------------


async def audited(conn: Connection, caller: Caller, action: str, before: SettingsOut) -> SettingsOut:
    """The settings after the change, recorded in the audit log with those before (secrets only as set / not set)."""
    after = await settings_out(conn, caller.org_id)
    await audit.record(conn, caller, action, "settings", caller.org_id, before=before, after=after)
    return after


async def settings_out(conn: Connection, org_id: UUID) -> SettingsOut:
    org = await settings_db.org_settings(conn, org_id)
    account = await settings_db.sms_account(conn, org_id)
    imis = await settings_db.imis_account(conn, org_id)
    senders = [SenderOut(**row) for row in await dashboard_db.senders(conn, org_id)]
    warnings = segment_limit_warnings(org["campaign_segment_limit"])
    if account is not None and account["alpha_sender_id"] and org["default_country_prefix"] == "+1":
        warnings.append("alpha sender IDs cannot be used to text the US or Canada")
    return SettingsOut(
        organisation=org["name"],
        sms_account=SmsAccountOut(linked=True, **_without_dates(account)) if account else SmsAccountOut(linked=False),
        imis=_imis_out(imis),
        country=country_out(org["default_country_prefix"]),
        general=GeneralOut(
            time_zone=org["time_zone"],
            default_sender_id=next((s.id for s in senders if s.is_default), None),
            campaign_segment_limit=org["campaign_segment_limit"],
            alert_emails=list(org["alert_emails"]),
            **{name: org[name] for name in RETENTION_FIELDS},
            run_member_cap=org["run_member_cap"],
            revocation_confirmation=org["revocation_confirmation"],
            revocation_confirmation_text=org["revocation_confirmation_text"],
            require_approval=org["require_approval"],
            reply_digests=org["reply_digests"],
            short_link_base_url=org["short_link_base_url"],
        ),
        senders=senders,
        warnings=warnings,
    )


def _imis_out(row: dict[str, Any] | None) -> ImisOut:
    if row is None:
        return ImisOut(linked=False)
    return ImisOut(linked=True, base_url=row["base_url"], username=row["username"],
                   query_endpoint=row["query_endpoint"], endpoint_checked_at=row["endpoint_checked_at"])


def segment_limit_warnings(limit: int) -> list[str]:
    low, high = RECOMMENDED_SEGMENT_LIMITS
    if limit > high:
        return [f"a per-campaign limit of {limit:,} segments is above the recommended {low:,}-{high:,}"]
    return []


# National numbers as members type them, for the example under the prefix setting.
_EXAMPLES = {"US": "(415) 555-2671", "CA": "(604) 555-0134", "GB": "07700 123456", "IE": "085 123 4567",
             "AU": "0412 345 678", "NZ": "021 123 4567"}


def country_out(prefix: str) -> CountryOut:
    region = region_for_prefix(prefix)
    national = _EXAMPLES.get(region, "555 0134")
    result = normalise(national, prefix)
    return CountryOut(default_country_prefix=prefix, region=region, example_national=national,
                      example_e164=result.e164 if isinstance(result, Normalised) else None)


def _without_dates(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "updated_at"}

