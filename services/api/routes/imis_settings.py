"""``/api/v1/settings/imis``: link the organisation's iMIS site (admins only), and check it again.

Linking checks the user and password with the site itself (``POST /token``) and finds which endpoint runs
its queries (docs/imis.md#the-query-endpoint): ``/api/Query`` on iMIS 20.3.77 and later, else the
deprecated ``/api/IQA``. Runs and previews then use that endpoint. ``POST .../check`` finds it again,
after the site is upgraded. The password is write-only; every answer is the whole settings document.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.db import transaction
from libs.common.errors import PermanentError
from libs.common.imis import HOST_INTERNAL
from libs.common.imis_iqa import Endpoint, ImisQueryClient, RetryPolicy
from services.api import settings_db
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PoolDep, SecretsDep, WebConfig, WebDep
from services.api.errors import InvalidInput, NotFound
from services.api.routes.settings import SettingsOut, Url, audited, settings_out
from services.api.webhook_url import check_imis_base_url

router = APIRouter(prefix="/settings/imis", tags=["settings"])

# A person is waiting on the Settings page: one try, a short wait.
_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_ONE_TRY = RetryPolicy(attempts=1)


class ImisLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: Url | None = Field(default=None, description="the site root; default: the deployment's iMIS")
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=500)]


_RESPONSES: dict[int | str, dict[str, Any]] = {422: {"description": "iMIS refused the user and password"},
              503: {"description": "iMIS could not be reached; try again"}}


@router.put("", summary="Link the iMIS site, or replace its user and password", responses=_RESPONSES)
async def link_imis(body: ImisLinkIn, admin: AdminDep, caller: CallerDep, pool: PoolDep, web: WebDep,
                    secrets: SecretsDep) -> SettingsOut:
    base_url = check_imis_base_url(body.base_url, env=web.env) if body.base_url else None
    endpoint = await _detect(web, base_url or web.imis_base_url, body.username, body.password)
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        await settings_db.link_imis_account(conn, secrets, admin.org.id, base_url, body.username, body.password,
                                            endpoint)
        return await audited(conn, caller, "settings.imis_linked", before)


@router.post("/check", summary="Find the iMIS site's query endpoint again (after an upgrade)", responses=_RESPONSES)
async def check_imis(admin: AdminDep, caller: CallerDep, pool: PoolDep, web: WebDep,
                     secrets: SecretsDep) -> SettingsOut:
    async with pool.acquire() as conn:
        login = await settings_db.imis_login(conn, secrets, admin.org.id)
    if login is None:
        raise NotFound("imis_account_missing", "no iMIS site is linked yet: link one first")
    base_url, username, password = login
    endpoint = await _detect(web, base_url or web.imis_base_url, username, password)
    async with transaction(pool) as conn:
        before = await settings_out(conn, admin.org.id)
        if not await settings_db.set_imis_endpoint(conn, admin.org.id, endpoint):
            raise NotFound("imis_account_missing", "no iMIS site is linked yet: link one first")
        return await audited(conn, caller, "settings.imis_checked", before)


async def _detect(web: WebConfig, base_url: str | None, username: str, password: str) -> Endpoint:
    """The site's query endpoint, asked outside any transaction (no connection is held while iMIS answers).
    Raises InvalidInput for refused credentials or a host that resolves inside our network; the client's
    RetryableError (503) when iMIS does not answer."""
    if base_url is None:
        raise InvalidInput("base_url", "value_required", "is required: this deployment has no default iMIS site")
    async with web.imis_client(_TIMEOUT) as http:
        client = ImisQueryClient(http, base_url, username, password, retry=_ONE_TRY)
        try:
            return await client.detect_endpoint()
        except httpx.InvalidURL:
            raise InvalidInput("base_url", "url_invalid", "is not an address a web request can be sent to") from None
        except PermanentError as exc:
            if exc.code == "imis_credentials_rejected":
                raise InvalidInput("password", exc.code, "iMIS refused this user and password") from None
            if exc.code == HOST_INTERNAL:
                raise InvalidInput("base_url", "url_host_internal", "resolves to an internal address: "
                                   "Textpulse must reach it from the internet") from None
            raise
