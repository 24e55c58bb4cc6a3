"""Reply digests: one e-mail to a campaign's contact, at most once a window (``window_s``, 15 minutes by
default), listing the members' replies to the campaign waiting in the Inbox (issue 27).

Organisations turn it on in Settings (``reply_digests_since``, migration 0052); replies from before are
never e-mailed. Each pass, for each campaign with replies not yet e-mailed, one transaction claims the
campaign's current window (``reply_digests``), marks the replies digested and queues the e-mail in the
alerts outbox (``raise_alert``, to the campaign's ``contact_email`` only), which the alert mailer sends.
So a restart, or a second usage service, sends no batch twice and loses none: replies that arrive after a
window's digest wait for the next window's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

import asyncpg

from libs.common.alerts import AlertKind, raise_alert
from libs.common.db import Queries, transaction
from libs.common.errors import PermanentError
from libs.common.logging import get_logger
from libs.common.polling import poll_forever

log = get_logger(__name__)

QUERIES: Final = Queries.load(Path(__file__).with_name("reply_digests.sql"))
MAX_LISTED: Final = 50  # members named in one e-mail; the count covers the rest


@dataclass(frozen=True, slots=True)
class DigestTuning:
    window_s: float = 900.0
    poll_s: float = 30.0
    batch: int = 100


def member_label(member_name: str | None, member_id: str | None) -> str | None:
    """How the e-mail names who replied: name and iMIS ID, either one, or None (the number is not e-mailed)."""
    name = (member_name or "").strip()
    if name and member_id:
        return f"{name} (iMIS {member_id})"
    return name or (f"iMIS {member_id}" if member_id else None)


class ReplyDigester:
    def __init__(self, pool: asyncpg.Pool, *, base_url: str, tuning: DigestTuning = DigestTuning()) -> None:
        self._pool = pool
        self._base_url = base_url
        self._tuning = tuning

    async def run(self) -> None:
        """Digest until cancelled; a database outage only delays it."""
        await poll_forever(self.run_once, stalled="reply_digests.stalled", poll_s=self._tuning.poll_s)

    async def run_once(self) -> int:
        """Queue the digests due now; returns how many were queued."""
        async with self._pool.acquire() as conn:
            due = await QUERIES.fetch(conn, "campaigns-to-digest", window_s=self._tuning.window_s,
                                      limit=self._tuning.batch)
        queued = 0
        for row in due:
            try:
                queued += await self._digest(row["org_id"], row["campaign_id"])
            except PermanentError as exc:  # the campaign deleted meanwhile: its replies stay in the Inbox
                log.error("reply_digest.failed", extra={"campaign_id": str(row["campaign_id"]), "code": exc.code,
                                                        "error": str(exc)})
        return queued

    async def _digest(self, org_id: UUID, campaign_id: UUID) -> int:
        async with transaction(self._pool) as conn:
            replies = await QUERIES.fetch(conn, "take-replies", org_id=org_id, campaign_id=campaign_id)
            if not replies:
                return 0  # another pass took them
            window = await QUERIES.fetchval(conn, "claim-window", campaign_id=campaign_id, org_id=org_id,
                                            window_s=self._tuning.window_s, replies=len(replies))
            if window is None:
                return 0  # this window's digest is already queued; these wait for the next
            await QUERIES.execute(conn, "mark-digested", ids=[r["id"] for r in replies])
            labels = [label for r in replies if (label := member_label(r["member_name"], r["member_id"]))]
            members = list(dict.fromkeys(labels))  # a member who wrote twice is listed once
            alert_id = await raise_alert(
                conn, org_id, AlertKind.REPLIES_WAITING, f"replies:{campaign_id}:{window.isoformat()}",
                {"replies": len(replies), "members": members[:MAX_LISTED]}, base_url=self._base_url,
                campaign_id=campaign_id, contact_only=True)
            await QUERIES.execute(conn, "record-alert", alert_id=alert_id, campaign_id=campaign_id,
                                  window_start=window)
        log.info("reply_digest.queued", extra={"org_id": str(org_id), "campaign_id": str(campaign_id),
                                               "replies": len(replies), "alert_id": alert_id})
        return 1
