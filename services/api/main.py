"""API service: the REST API and the staff dashboard (FastAPI).

Wiring only: settings, connections, the named queries (all checked at start), routers, the error
handler, static files and security headers.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from libs.common import erased_suppressions, one_off_texts, revocation_confirmations, secret_store, sender_volume
from libs.common.access_log import AccessLog
from libs.common.body_limits import BodyLimit, RouteLimit
from libs.common.connections import open_connections
from libs.common.polling import poll_forever
from libs.common.runtime import Check, Service, health_router
from libs.common.secret_store import SecretStore
from libs.common.settings import Settings
from libs.common.topics import CAMPAIGN_DUE, CONSENT
from services.api import (
    access,
    audit,
    auth,
    auth_db,
    dashboard_db,
    db,
    erasure,
    funnel,
    lists_db,
    send_planning,
    settings_db,
    test_send_db,
    uploads_db,
    verification_db,
)
from services.api.deps import WebConfig
from services.api.errors import install_problem_handler
from services.api.nul_text import refuse_nul_characters
from services.api.openapi import install_problem_responses
from services.api.pages import install_web
from services.api.routes import (
    audiences,
    audit_events,
    campaign_pages,
    campaigns,
    dashboard,
    erasures,
    imis_settings,
    imis_writeback,
    inbox,
    inbox_pages,
    keyword_settings,
    list_pages,
    lists,
    messages,
    outbox_page,
    revocations,
    run_reports,
    send_rule_settings,
    sender_verification,
    session,
    settings,
    settings_page,
    suppression_pages,
    suppressions,
    test_numbers,
    test_send,
    uploads,
    users,
    webhook_endpoints,
)

NAME = "api"
API_PREFIX = "/api/v1"
# Toll-free verifications are asked of Twilio again when an hour old, looked for every five minutes.
VERIFICATION_MAX_AGE_S = 3600.0
VERIFICATION_POLL_S = 300.0

PAGE_ROUTERS = (session.router, dashboard.router, campaign_pages.router, settings_page.router,
                suppression_pages.router, list_pages.router, outbox_page.router, inbox_pages.router)
API_ROUTERS = (campaigns.router, run_reports.router, messages.router, dashboard.api_router, audiences.router,
               settings.router, imis_settings.router, settings.senders_router, sender_verification.router, users.router,
               suppressions.router, test_send.router, test_numbers.router, uploads.router, lists.router,
               audit_events.router, erasures.router, revocations.router,
               imis_writeback.router, inbox.router, keyword_settings.router, webhook_endpoints.router,
               send_rule_settings.router)

ALL_QUERIES = (db.QUERIES, auth_db.QUERIES, dashboard_db.QUERIES, settings_db.QUERIES, suppressions.QUERIES,
               test_send_db.QUERIES, uploads_db.QUERIES, lists_db.QUERIES, sender_volume.QUERIES, secret_store.QUERIES,
               audit.QUERIES, erasure.QUERIES, erased_suppressions.QUERIES, revocations.QUERIES,
               revocation_confirmations.QUERIES, imis_writeback.QUERIES, inbox.QUERIES, keyword_settings.QUERIES,
               one_off_texts.QUERIES, verification_db.QUERIES, webhook_endpoints.QUERIES, funnel.QUERIES,
               send_planning.QUERIES)


@asynccontextmanager
async def build(settings_: Settings) -> AsyncIterator[Service]:
    # The API writes events to the outbox (the opt-out service's relay publishes them), never to Kafka.
    with auth.password_cost(settings_.password_hash_cost):
        async with open_connections(settings_, [CAMPAIGN_DUE, CONSENT], publishes=False) as conn:
            async with conn.pool.acquire() as check:
                for queries in ALL_QUERIES:
                    await queries.check(check)
            app = create_app(conn.pool, settings_, conn.readiness_checks())
            refresh = functools.partial(sender_verification.refresh_due, conn.pool, app.state.secrets,
                                        settings_.twilio_api_base_url, max_age_s=VERIFICATION_MAX_AGE_S)
            verifications = functools.partial(poll_forever, refresh, stalled="sender_verification.stalled",
                                              poll_s=VERIFICATION_POLL_S)
            yield Service(app=app, workers=[verifications])


def create_app(pool: asyncpg.Pool, settings_: Settings, checks: Mapping[str, Check] | None = None) -> FastAPI:
    # No /docs or /redoc: FastAPI serves their scripts from a CDN, and every asset must come from here.
    # The OpenAPI document itself is at /openapi.json.
    app = FastAPI(title="Textpulse API", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.pool = pool
    app.state.secrets = SecretStore.from_settings(settings_)
    app.state.web = WebConfig(public_base_url=settings_.public_base_url,
                              twilio_api_base_url=settings_.twilio_api_base_url,
                              imis_base_url=settings_.imis_base_url,
                              sign_in_max_per_address=settings_.sign_in_max_per_address,
                              demo_outbox_url=settings_.demo_outbox_url,
                              env=settings_.env, run_member_cap=settings_.run_member_cap,
                              short_link_base_url=settings_.short_link_base_url)
    app.state.csv_upload_max_bytes = settings_.csv_upload_max_bytes
    upload_cap = RouteLimit(f"{API_PREFIX}{uploads.CSV_UPLOAD_PATH}",
                            settings_.csv_upload_max_bytes + uploads.MULTIPART_OVERHEAD)
    app.add_middleware(BodyLimit, default=settings_.http_body_max_bytes, routes=[upload_cap])
    install_problem_handler(app)
    install_problem_responses(app)
    install_web(app, https=app.state.web.secure_cookies)
    app.add_middleware(AccessLog)
    mounted = [("", health_router(NAME, checks or {}))]
    mounted += [("", pages) for pages in PAGE_ROUTERS] + [(API_PREFIX, api) for api in API_ROUTERS]
    access.check_routes((prefix, route) for prefix, router in mounted for route in router.routes
                        if isinstance(route, APIRoute))
    for prefix, router in mounted:
        guards = [Depends(refuse_nul_characters)] if prefix == API_PREFIX else []
        app.include_router(router, prefix=prefix, dependencies=guards)
    return app
