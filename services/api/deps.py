"""The API's dependencies as types, so route signatures stay short::

    async def get_campaign(campaign_id: UUID, org: OrgDep, pool: PoolDep) -> CampaignOut: ...

Who is calling, in this order:

1. ``Authorization: Bearer tpk_...``: an API key of one organisation (integrations). A header that is
   present but wrong is a 401; it never falls back to the cookie.
2. The session cookie set at sign-in (browsers). A change (any method but GET, HEAD, OPTIONS) must also
   carry the session's CSRF token in ``X-CSRF-Token``, or it is refused with 403 ``csrf_failed``: the
   cookie alone, which the browser attaches to a forged cross-site request, is not enough.
3. Neither: 401 ``unauthenticated`` (pages turn it into a redirect to the sign-in page).

Every route scopes its queries by ``OrgDep``'s id, so another organisation's rows are never found
(404, not 403: their existence is not revealed). ``AdminDep`` adds the admin role (403 ``admin_only``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
import httpx
from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from libs.common.public_hosts import outbound_client
from libs.common.secret_store import SecretStore
from libs.common.send_checks import member_cap
from services.api import auth, auth_db
from services.api.errors import Forbidden, Unauthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# app.state is untyped (Starlette's State); services.api.main sets these three at start-up.
def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]


def get_secrets(request: Request) -> SecretStore:
    secrets: SecretStore = request.app.state.secrets
    return secrets


# Seals and opens stored credentials (libs/common/secret_store.py); one per process, it caches data keys.
SecretsDep = Annotated[SecretStore, Depends(get_secrets)]


@dataclass(frozen=True, slots=True)
class WebConfig:
    """What the web layer needs from the settings (``app.state.web``)."""

    public_base_url: str
    twilio_api_base_url: str = "https://api.twilio.com"
    imis_base_url: str | None = None  # an iMIS link without its own base_url uses this, as the audience service does
    sign_in_max_per_address: int = auth.SIGN_IN_MAX_ATTEMPTS_PER_ADDRESS
    demo_outbox_url: str | None = None  # the demo's SMTP catcher, when ``make demo`` runs one
    env: str = "development"  # TEXTPULSE_ENV: development and test allow local webhook URLs
    run_member_cap: int = 250_000  # TEXTPULSE_RUN_MEMBER_CAP: for organisations without a cap of their own
    short_link_base_url: str = "http://127.0.0.1:8005"  # TEXTPULSE_SHORT_LINK_BASE_URL, for those without a domain

    def short_links(self, org: Organisation) -> str:
        """Where ``org``'s tracked links point: its own short domain, else the platform's."""
        return org.short_link_base_url or self.short_link_base_url

    def member_cap(self, org: Organisation) -> int:
        """The most members one run of ``org`` may have (libs/common/send_checks.py)."""
        return member_cap(org.run_member_cap, self.run_member_cap)

    def imis_client(self, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
        """An HTTP client for organisations' iMIS sites: outside development, no internal host, checked at
        every request (the deployment's own ``imis_base_url`` excepted)."""
        return outbound_client(env=self.env, timeout=timeout, trusted_url=self.imis_base_url)

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def cookie_name(self) -> str:
        return auth.cookie_name(self.secure_cookies)


def get_web(request: Request) -> WebConfig:
    web: WebConfig = request.app.state.web
    return web


WebDep = Annotated[WebConfig, Depends(get_web)]


@dataclass(frozen=True, slots=True)
class Organisation:
    id: UUID
    time_zone: str
    campaign_segment_limit: int
    account_max_segments: int | None  # sms_accounts.max_segments: caps every campaign's limit
    name: str = ""
    default_country_prefix: str = "+1"
    run_member_cap: int | None = None  # the organisation's own member cap per run (0030); None: the platform's
    require_approval: bool = False  # campaigns need an approver's approval before they are sent (0048)
    short_link_base_url: str | None = None  # the organisation's short domain (0047); None: the platform's


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a signed-in user (``via`` session) or an integration (``via`` api_key)."""

    org: Organisation
    role: auth.Role
    actor: str  # recorded as created_by / updated_by: the user's e-mail, or "api-key:<name>"
    via: Literal["session", "api_key"]
    user_id: UUID | None = None
    display_name: str = ""
    csrf_token: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def role_label(self) -> str:
        """The role as the page header shows it: Admin, Approver or Staff."""
        return self.role.capitalize()

    @property
    def may_approve(self) -> bool:
        """Admins and approvers, signed in as themselves: approving is a person's act, never an API key's."""
        return self.via == "session" and self.role in ("admin", "approver")


def _organisation(row: dict[str, Any]) -> Organisation:
    return Organisation(row["org_id"], row["time_zone"], row["campaign_segment_limit"], row["account_max_segments"],
                        row["org_name"], row["default_country_prefix"], row["run_member_cap"],
                        row["require_approval"], row["short_link_base_url"])


# Declared for the OpenAPI document (its securitySchemes); the headers are read below, so that a wrong
# scheme is a 401 of ours rather than FastAPI's.
_BEARER = HTTPBearer(auto_error=False, scheme_name="apiKey", description="An API key: 'Bearer tpk_...'")
_COOKIE = APIKeyCookie(name=auth.cookie_name(False), auto_error=False, scheme_name="session",
                       description="The dashboard's session cookie (with X-CSRF-Token on changes)")


async def current_principal(
    request: Request,
    pool: PoolDep,
    web: WebDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    _cookie: Annotated[str | None, Security(_COOKIE)] = None,
) -> Principal:
    """Who is calling (see the module docstring); raises Unauthenticated (401) or Forbidden (403)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return await _from_api_key(pool, authorization)
    token = request.cookies.get(web.cookie_name)
    if not token:
        raise Unauthenticated("unauthenticated", "sign in, or send an API key as 'Authorization: Bearer <key>'")
    async with pool.acquire() as conn:
        row = await auth_db.session_principal(conn, token)
        if row is None:
            raise Unauthenticated("session_expired", "the session has ended; sign in again")
        if datetime.now(UTC) - row["last_seen_at"] > auth.SESSION_TOUCH_EVERY:
            await auth_db.touch_session(conn, token)
    if request.method not in SAFE_METHODS and not auth.same_token(row["csrf_token"],
                                                                  request.headers.get(auth.CSRF_HEADER)):
        raise Forbidden("csrf_failed", f"the {auth.CSRF_HEADER} header is missing or does not match the session")
    return Principal(org=_organisation(row), role=row["role"], actor=row["email"], via="session",
                     user_id=row["user_id"], display_name=row["user_name"] or row["email"],
                     csrf_token=row["csrf_token"])


async def _from_api_key(pool: asyncpg.Pool, authorization: str) -> Principal:
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(auth.API_KEY_PREFIX):
        raise Unauthenticated("api_key_invalid", "the Authorization header must be 'Bearer tpk_...'")
    async with pool.acquire() as conn:
        row = await auth_db.api_key_principal(conn, key)
        if row is None:
            raise Unauthenticated("api_key_invalid", "the API key is unknown, revoked or expired")
        last = row["last_used_at"]
        if last is None or datetime.now(UTC) - last > auth.SESSION_TOUCH_EVERY:
            await auth_db.touch_api_key(conn, row["key_id"])
    return Principal(org=_organisation(row), role=row["role"], actor=f"api-key:{row['key_name']}", via="api_key",
                     display_name=row["key_name"])


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def current_org(principal: PrincipalDep) -> Organisation:
    return principal.org


OrgDep = Annotated[Organisation, Depends(current_org)]


def current_actor(principal: PrincipalDep) -> str:
    return principal.actor


ActorDep = Annotated[str, Depends(current_actor)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("admin_only", "only an administrator of the organisation can do this")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]

# Required: without it a retried request (a timeout, a double click) could send a campaign twice. A request
# without it is a 400 ``idempotency_key_missing`` (errors.py, MISSING_HEADER_HINTS says what to send).
IdempotencyKey = Annotated[
    str,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="A value unique to this send (a UUID): retrying with the same key returns the first "
                       "response and starts nothing new"),
]


# PostgreSQL's OFFSET is a bigint: past it the query fails. No page is that far in, so the bound is a 422.
MAX_PAGE_OFFSET = 1_000_000_000
PageOffset = Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)]
