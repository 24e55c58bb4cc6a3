"""``/api/v1/webhook-endpoints``: where an organisation's events are POSTed, signed (admins only).

An endpoint has a URL (checked as the webhook base URL is: https, no private hosts outside development), the
event types it takes, and a secret: generated (or supplied) at creation and shown in that answer only,
stored sealed. The events service (services/events) delivers; here admins list each endpoint's recent
deliveries and redeliver one. Every change is in the audit log (the secret never is).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common import event_signing
from libs.common.db import Connection, Queries, transaction
from libs.common.outgoing_events import EventType
from libs.common.secret_store import WEBHOOK_ENDPOINT_SECRET
from services.api import audit
from services.api.audit import CallerDep
from services.api.deps import AdminDep, PoolDep, SecretsDep, WebDep
from services.api.errors import NotFound
from services.api.webhook_url import check_event_endpoint_url

QUERIES: Final = Queries.load(Path(__file__).parents[1] / "webhook_endpoints.sql")

router = APIRouter(prefix="/webhook-endpoints", tags=["webhook endpoints"])

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$")]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=8)]
DeliveryState = Literal["pending", "delivered", "failed"]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://crm.example.org/textpulse-events", "event_types": ["delivered", "clicked", "opted_out"]}]})

    url: Url
    event_types: EventTypes
    enabled: bool = True
    secret: Secret | None = Field(default=None, description="omit to have one generated (shown once)")


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = None
    secret: Secret | None = Field(default=None, description="a new secret; the old one stops signing at once")


class EndpointOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    pending: int = Field(description="deliveries waiting or being retried")
    failed: int = Field(description="deliveries given up after 24 hours of retries")
    last_delivered_at: datetime | None


class CreatedEndpoint(EndpointOut):
    secret: str = Field(description="signs every delivery; shown only in this answer")


class DeliveryOut(BaseModel):
    id: int
    event_id: UUID
    type: str
    occurred_at: datetime
    state: DeliveryState
    attempts: int
    last_status: int | None = Field(description="the endpoint's HTTP status at the last attempt")
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="null once delivered or failed")
    delivered_at: datetime | None
    failed_at: datetime | None
    created_at: datetime


def _delivery(row: asyncpg.Record) -> DeliveryOut:
    pending = row["state"] == "pending"
    return DeliveryOut(**{**dict(row), "next_attempt_at": row["next_attempt_at"] if pending else None})


def _url(url: str, env: str) -> str:
    check_event_endpoint_url(url, env=env)
    return url


async def _endpoint(conn: Connection, org_id: UUID, endpoint_id: UUID) -> EndpointOut:
    row = await QUERIES.fetchrow(conn, "list-endpoints", org_id=org_id, endpoint_id=endpoint_id)
    if row is None:
        raise NotFound("endpoint_not_found", f"webhook endpoint {endpoint_id} does not exist")
    return EndpointOut(**dict(row))


async def endpoints_out(conn: Connection, org_id: UUID) -> list[EndpointOut]:
    return [EndpointOut(**dict(r)) for r in await QUERIES.fetch(conn, "list-endpoints", org_id=org_id,
                                                                       endpoint_id=None)]


async def recent_deliveries(conn: Connection, org_id: UUID, endpoint_id: UUID, *, limit: int,
                            state: DeliveryState | None = None) -> list[DeliveryOut]:
    rows = await QUERIES.fetch(conn, "list-deliveries", org_id=org_id, endpoint_id=endpoint_id, delivery_id=None,
                               state=state, limit=limit)
    return [_delivery(r) for r in rows]


@router.get("", summary="The organisation's event endpoints (admins)")
async def list_endpoints(admin: AdminDep, pool: PoolDep) -> list[EndpointOut]:
    async with pool.acquire() as conn:
        return await endpoints_out(conn, admin.org.id)


@router.post("", status_code=201, summary="Register an event endpoint; its secret is shown in this answer only")
async def create_endpoint(body: EndpointIn, admin: AdminDep, caller: CallerDep, pool: PoolDep, web: WebDep,
                          secrets: SecretsDep) -> CreatedEndpoint:
    url = _url(body.url, web.env)
    secret = body.secret or event_signing.new_secret()
    async with transaction(pool) as conn:
        sealed = await secrets.seal(conn, admin.org.id, WEBHOOK_ENDPOINT_SECRET, secret)
        endpoint_id = await QUERIES.fetchval(conn, "create-endpoint", org_id=admin.org.id, url=url, secret=sealed,
                                             event_types=list(body.event_types), enabled=body.enabled)
        await audit.record(conn, caller, "webhook_endpoint.created", "webhook_endpoint", endpoint_id,
                           after={"url": url, "event_types": body.event_types, "enabled": body.enabled})
        created = await _endpoint(conn, admin.org.id, endpoint_id)
    return CreatedEndpoint(**created.model_dump(), secret=secret)


@router.patch("/{endpoint_id}", summary="Change an endpoint's URL, event types, secret or whether it is enabled")
async def update_endpoint(endpoint_id: UUID, body: EndpointPatch, admin: AdminDep, caller: CallerDep,
                          pool: PoolDep, web: WebDep, secrets: SecretsDep) -> EndpointOut:
    url = None if body.url is None else _url(body.url, web.env)
    async with transaction(pool) as conn:
        before = await _endpoint(conn, admin.org.id, endpoint_id)
        sealed = None if body.secret is None else await secrets.seal(conn, admin.org.id, WEBHOOK_ENDPOINT_SECRET,
                                                                     body.secret)
        await QUERIES.fetchval(conn, "update-endpoint", org_id=admin.org.id, endpoint_id=endpoint_id, url=url,
                               secret=sealed, event_types=None if body.event_types is None else list(body.event_types),
                               enabled=body.enabled)
        after = await _endpoint(conn, admin.org.id, endpoint_id)
        await audit.record(conn, caller, "webhook_endpoint.updated", "webhook_endpoint", endpoint_id,
                           before=before.model_dump(include={"url", "event_types", "enabled"}),
                           after=after.model_dump(include={"url", "event_types", "enabled"}),
                           detail={"secret_changed": body.secret is not None})
    return after


@router.delete("/{endpoint_id}", status_code=204, summary="Remove an endpoint and its deliveries")
async def delete_endpoint(endpoint_id: UUID, admin: AdminDep, caller: CallerDep, pool: PoolDep) -> Response:
    async with transaction(pool) as conn:
        if await QUERIES.fetchval(conn, "delete-endpoint", org_id=admin.org.id, endpoint_id=endpoint_id) is None:
            raise NotFound("endpoint_not_found", f"webhook endpoint {endpoint_id} does not exist")
        await audit.record(conn, caller, "webhook_endpoint.deleted", "webhook_endpoint", endpoint_id)
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", summary="An endpoint's latest deliveries, newest first")
async def list_deliveries(
    endpoint_id: UUID, admin: AdminDep, pool: PoolDep,
    state: Annotated[DeliveryState | None, Query(description="only pending, delivered or failed ones")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryOut]:
    async with pool.acquire() as conn:
        await _endpoint(conn, admin.org.id, endpoint_id)
        return await recent_deliveries(conn, admin.org.id, endpoint_id, limit=limit, state=state)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             summary="Send a delivery again now (with a fresh 24 hours of retries)")
async def redeliver(endpoint_id: UUID, delivery_id: int, admin: AdminDep, caller: CallerDep,
                    pool: PoolDep) -> DeliveryOut:
    async with transaction(pool) as conn:
        if await QUERIES.fetchval(conn, "redeliver", org_id=admin.org.id, endpoint_id=endpoint_id,
                                  delivery_id=delivery_id) is None:
            raise NotFound("delivery_not_found", f"delivery {delivery_id} of endpoint {endpoint_id} does not exist")
        await audit.record(conn, caller, "webhook_delivery.redelivered", "webhook_delivery", delivery_id,
                           detail={"endpoint_id": str(endpoint_id)})
        row = await QUERIES.fetchrow(conn, "list-deliveries", org_id=admin.org.id, endpoint_id=endpoint_id,
                                     delivery_id=delivery_id, state=None, limit=1)
    assert row is not None
    return _delivery(row)
