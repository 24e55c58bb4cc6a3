"""Raising an e-mail alert from any service, inside the caller's own transaction.

    await raise_alert(conn, org_id, AlertKind.FAILURE_THRESHOLD, f"run:{run_id}:failure_threshold",
                      {"reason": reason, "sent": 180, "failed": 20}, base_url=settings.public_base_url,
                      run_id=run_id)

``raise_alert``:

1. finds the recipients: the organisation's ``alert_emails`` plus, for an alert about a campaign (or its
   run), the campaign's ``contact_email``; and whether the organisation's Twilio account is in test mode;
2. claims the condition ``(org_id, dedupe_key)``: the same condition raised again inside its quiet
   period does nothing and returns None. After the quiet period it is e-mailed again as a reminder; a
   quiet period of None means once, ever (put the period in the key, e.g. ``usage_80:2026-03``);
3. renders the e-mail (``alert_templates``) and queues it in the ``alerts`` outbox, which the usage
   service's mailer sends over SMTP, retrying while the server is down.

Everything is written in the caller's transaction: an alert is queued if and only if the change that
raised it commits. Raises PermanentError ``org_unknown`` / ``run_unknown`` for a target that does not
exist, and ``alert_context_invalid`` when the template misses a figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from libs.common.alert_templates import AlertKind, render
from libs.common.db import Connection, Queries
from libs.common.errors import PermanentError
from libs.common.logging import get_logger

__all__ = ["QUERIES", "QUIET_PERIODS", "AlertKind", "raise_alert", "recipients_for"]

log = get_logger(__name__)

QUERIES: Final = Queries.load(Path(__file__).with_name("alerts.sql"))

_DAY: Final = timedelta(hours=24)
# How long a raised condition stays quiet before it may be e-mailed again as a reminder. Conditions
# that are facts about the past (a missed run, a month's allowance) are told once.
QUIET_PERIODS: Final[Mapping[AlertKind, timedelta | None]] = {
    AlertKind.SEGMENT_LIMIT: None,
    AlertKind.FAILURE_THRESHOLD: _DAY,
    AlertKind.TWILIO_REFUSED: _DAY,
    AlertKind.TWILIO_AUTH: _DAY,
    AlertKind.TOLL_FREE_RESTRICTED: _DAY,
    AlertKind.IMIS_UNREACHABLE: None,
    AlertKind.IQA_FAILED: None,
    AlertKind.RUN_FAILED: None,
    AlertKind.RUN_MISSED: None,
    AlertKind.NOTHING_SENT: None,
    AlertKind.WRITEBACK_STUCK: _DAY,
    AlertKind.USAGE_80: None,
    AlertKind.USAGE_100: None,
    AlertKind.OPTED_OUT_FAILURES: None,
    AlertKind.WEBHOOK_SIGNATURES_FAILING: _DAY,
    AlertKind.REPLIES_WAITING: None,  # its key names the window
}
_KIND_DEFAULT: Final = object()
# Deliberately loose (people's addresses are odd), but never whitespace, a second @ or header syntax.
_ADDRESS: Final = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")
_MESSAGE_ID_DOMAIN: Final = "alerts.textpulse"


def recipients_for(alert_emails: Iterable[str | None], contact_email: str | None) -> list[str]:
    """The organisation's addresses then the campaign contact, each once (case-insensitively), in order;
    blank or malformed addresses are left out rather than failing the alert."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in [*alert_emails, contact_email]:
        address = (raw or "").strip()
        if not _ADDRESS.match(address) or address.lower() in seen:
            continue
        seen.add(address.lower())
        out.append(address)
    return out


async def raise_alert(
    conn: Connection,
    org_id: UUID,
    kind: AlertKind,
    dedupe_key: str,
    context: Mapping[str, Any],
    *,
    base_url: str,
    run_id: UUID | None = None,
    campaign_id: UUID | None = None,
    quiet_period: timedelta | None | object = _KIND_DEFAULT,
    contact_only: bool = False,
) -> int | None:
    """Queue the ``kind`` alert unless its condition was raised within its quiet period.

    Returns the new alert's id, or None when deduplicated. ``quiet_period`` defaults to the kind's
    (``QUIET_PERIODS``). ``contact_only``: to the campaign's contact alone, not the organisation's
    alert addresses. Raises RuntimeError outside a transaction (it writes two rows that belong together).
    """
    if not conn.is_in_transaction():
        # The claim and the alert must commit together, and with the change that raised them.
        raise RuntimeError("raise_alert must run inside the caller's transaction")
    kind = AlertKind(kind)
    target = await QUERIES.fetchrow(conn, "alert-target", org_id=org_id, run_id=run_id, campaign_id=campaign_id)
    if target is None:
        raise PermanentError("org_unknown", f"no organisation {org_id} to alert")
    if (run_id is not None or campaign_id is not None) and target["campaign_id"] is None:
        raise PermanentError("run_unknown", f"no campaign or run {run_id or campaign_id} in organisation {org_id}")
    quiet = QUIET_PERIODS[kind] if quiet_period is _KIND_DEFAULT else quiet_period
    quiet_s = quiet.total_seconds() if isinstance(quiet, timedelta) else None
    times = await QUERIES.fetchval(conn, "claim-condition", org_id=org_id, dedupe_key=dedupe_key, kind=kind.value,
                                   quiet_s=quiet_s)
    if times is None:
        log.info("alert.deduplicated", extra={"org_id": str(org_id), "kind": kind.value, "dedupe_key": dedupe_key})
        return None

    full: dict[str, Any] = {"org_name": target["org_name"], "time_zone": target["time_zone"]}
    if target["campaign_id"] is not None:
        full |= {"campaign_id": str(target["campaign_id"]), "campaign_name": target["campaign_name"]}
    if run_id is not None:
        full["run_id"] = str(run_id)
    full |= dict(context)
    rendered = render(kind, full, base_url=base_url, test=target["test"], reminder=times > 1)
    recipients = recipients_for([] if contact_only else target["alert_emails"], target["contact_email"])
    alert_id: int | None = await QUERIES.fetchval(
        conn, "insert-alert", org_id=org_id, kind=kind.value, dedupe_key=dedupe_key, run_id=run_id,
        campaign_id=target["campaign_id"], test=target["test"], reminder=times > 1, recipients=recipients,
        subject=rendered.subject, body_text=rendered.text, body_html=rendered.html,
        context=json.dumps(full, default=str), message_id=make_msgid("alert", domain=_MESSAGE_ID_DOMAIN),
        state="pending" if recipients else "skipped",
        last_error=None if recipients else "no_recipients: the organisation has no alert addresses and no contact",
    )
    log.info("alert.raised", extra={"org_id": str(org_id), "kind": kind.value, "alert_id": alert_id,
                                    "recipients": len(recipients), "reminder": times > 1})
    return alert_id
