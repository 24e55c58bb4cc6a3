"""The Settings page (admins only; staff get a 403 page). Its forms save through ``/api/v1/settings``,
``/api/v1/settings/imis-writeback``, ``/api/v1/settings/send-rules``, ``/api/v1/settings/test-numbers``,
``/api/v1/users``, ``/api/v1/api-keys`` and ``/api/v1/webhook-endpoints``; this module only renders what is there
now. Its audit log section filters with ``?action=&actor=&from=&to=`` on the page itself and exports through
``/api/v1/audit-events/export.csv`` with the same filters."""

from __future__ import annotations

import functools
import zoneinfo
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from libs.common.outgoing_events import EVENT_TYPES
from services.api import audit, auth, auth_db, pages, test_send_db
from services.api.deps import AdminDep, PoolDep, WebDep
from services.api.routes import imis_writeback, send_rule_settings, webhook_endpoints
from services.api.routes.audit_events import AuditEventOut, AuditFilterDep, decoded
from services.api.routes.settings import RECOMMENDED_SEGMENT_LIMITS, settings_out
from services.api.test_send_limits import MAX_TEST_NUMBERS

router = APIRouter(tags=["dashboard"], include_in_schema=False)

AUDIT_ROWS_SHOWN = 50
DELIVERIES_SHOWN = 10  # per event endpoint
# The retention settings (routes/settings.py RETENTION_FIELDS) as the General form shows them.
RETENTION_INPUTS = (
    ("retention_webhook_days", "Raw Twilio webhooks", "Webhooks and delivery reports as Twilio sent them."),
    ("retention_reply_days", "Members' replies", "The text of replies; the reply itself and its keyword stay."),
    ("retention_body_days", "Rendered texts", "Each member's text and merge values, counted from the run's end."),
    ("retention_csv_days", "Uploaded CSV rows", "The rows of a file, unless a campaign may still send to it."),
)
AUDIT_FILTERS = ("action", "actor", "from", "to")


@functools.cache
def _time_zones() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, admin: AdminDep, pool: PoolDep, web: WebDep,
                        where: AuditFilterDep) -> HTMLResponse:
    async with pool.acquire() as conn:
        settings = await settings_out(conn, admin.org.id)
        users, _ = await auth_db.list_users(conn, admin.org.id, 200, 0)
        keys = await auth_db.list_api_keys(conn, admin.org.id)
        test_numbers = await test_send_db.staff_test_numbers(conn, admin.org.id)
        writeback = await imis_writeback.writeback_out(conn, admin.org.id)
        endpoints = await webhook_endpoints.endpoints_out(conn, admin.org.id)
        deliveries = {e.id: await webhook_endpoints.recent_deliveries(conn, admin.org.id, e.id, limit=DELIVERIES_SHOWN)
                      for e in endpoints}
        send_rules = await send_rule_settings.send_rules_out(conn, admin.org.id)
        audit_rows = await audit.QUERIES.fetch(conn, "list-audit-events", **where.values(), limit=AUDIT_ROWS_SHOWN,
                                               offset=0)
        audit_actions = [r["action"] for r in await audit.QUERIES.fetch(conn, "audit-actions", org_id=admin.org.id)]
    filters = {k: v for k in AUDIT_FILTERS if (v := request.query_params.get(k))}
    return pages.render(request, "settings.html", principal=admin, nav="settings", settings=settings, users=users,
                        api_keys=keys, time_zones=_time_zones(), recommended=RECOMMENDED_SEGMENT_LIMITS,
                        min_password=auth.MIN_PASSWORD_LENGTH, test_numbers=test_numbers,
                        max_test_numbers=MAX_TEST_NUMBERS, imis_writeback=writeback, send_rules=send_rules,
                        retention_fields=RETENTION_INPUTS, endpoints=endpoints, deliveries=deliveries,
                        event_types=EVENT_TYPES,
                        platform_member_cap=web.run_member_cap,
                        audit_events=[AuditEventOut(**decoded(r)) for r in audit_rows],
                        audit_total=audit_rows[0]["total"] if audit_rows else 0, audit_actions=audit_actions,
                        audit_filters={k: filters.get(k, "") for k in AUDIT_FILTERS},
                        audit_export="/api/v1/audit-events/export.csv" + (f"?{urlencode(filters)}" if filters else ""))
