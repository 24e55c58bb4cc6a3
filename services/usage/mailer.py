"""The alert mailer: drains the ``alerts`` outbox over SMTP (aiosmtplib), retrying while the server is down.

An alert is claimed (a lease: a mailer that dies mid-send leaves it to be sent again), sent outside
any transaction, then recorded:

- sent: the server took it for at least one recipient (refused ones are noted in ``last_error``);
- pending with ``last_error`` and a later ``next_attempt_at``: the server was unreachable, timed out,
  refused the login or answered 4xx. Retried with exponential back-off until ``max_attempts``
  (with the defaults, about a day), so an SMTP outage delays alerts and loses none;
- failed: the server refused every recipient, or the message, with a 5xx; or attempts ran out.

Delivery is at least once: a crash between the server's acceptance and the commit sends the alert
again, with the same Message-ID, which mail clients use to fold duplicates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal

import aiosmtplib
import asyncpg

from libs.common.backoff import retry_delay
from libs.common.logging import get_logger
from libs.common.polling import drain, poll_forever
from libs.common.settings import Settings
from services.usage import db

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    sender: str
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_starttls, settings.smtp_username, password,
                   settings.smtp_from)


@dataclass(frozen=True, slots=True)
class MailerTuning:
    batch: int = 20
    poll_s: float = 1.0
    lease_s: float = 120.0
    max_attempts: int = 60  # with the 30 min cap: about a day of trying
    retry_base_s: float = 15.0
    retry_cap_s: float = 1800.0


def build_message(alert: asyncpg.Record | Mapping[str, Any], *, sender: str, now: datetime) -> EmailMessage:
    """The e-mail for one outbox row: plain text with an HTML alternative, marked as automatic (RFC 3834)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(alert["recipients"])
    message["Subject"] = alert["subject"]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = alert["message_id"]
    message["Auto-Submitted"] = "auto-generated"
    message["X-Textpulse-Alert"] = alert["kind"]
    message.set_content(alert["body_text"])
    message.add_alternative(alert["body_html"], subtype="html")
    return message


Verdict = Literal["retry", "fail"]


def smtp_verdict(exc: BaseException) -> Verdict:
    """Whether a failed send may succeed later. Only a 5xx refusal of every recipient, or of the message
    itself, is final; a refused login (a setting to fix), a 4xx and a dead connection are retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return "fail" if codes and all(code >= 500 for code in codes) else "retry"
    if isinstance(exc, aiosmtplib.SMTPDataError) and exc.code >= 500:
        return "fail"
    return "retry"


class AlertMailer:
    def __init__(self, pool: asyncpg.Pool, smtp: SmtpConfig, *, tuning: MailerTuning = MailerTuning(),
                 jitter: Callable[[], float] = random.random) -> None:
        self._pool = pool
        self._smtp = smtp
        self._tuning = tuning
        self._jitter = jitter

    async def run(self) -> None:
        """Send until cancelled; a database outage is waited out."""
        await poll_forever(lambda: drain(self.run_once, self._tuning.batch), stalled="alert_mailer.stalled",
                           poll_s=self._tuning.poll_s)

    async def run_once(self) -> int:
        """Claim one batch of due alerts and send each; returns how many were claimed."""
        async with self._pool.acquire() as conn:
            alerts = await db.claim_alerts(conn, limit=self._tuning.batch, lease_s=self._tuning.lease_s)
        for alert in alerts:
            await self._send(alert)
        return len(alerts)

    async def _send(self, alert: asyncpg.Record) -> None:
        fields = {"alert_id": alert["id"], "org_id": str(alert["org_id"]), "kind": alert["kind"],
                  "attempt": alert["attempts"]}
        try:
            message = build_message(alert, sender=self._smtp.sender, now=datetime.now().astimezone())
        except (ValueError, TypeError) as exc:  # a header the e-mail library refuses: no retry can help
            async with self._pool.acquire() as conn:
                await db.alert_failed(conn, alert["id"], error=f"message_invalid: {exc}")
            log.error("alert.invalid", extra=fields | {"error": str(exc)})
            return
        s = self._smtp
        try:
            refused, _ = await aiosmtplib.send(
                message, hostname=s.host, port=s.port, start_tls=s.starttls, username=s.username,
                password=s.password, timeout=s.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._failed(alert, exc, fields)
            return
        note = "; ".join(f"{address} refused: {r.code} {r.message}" for address, r in refused.items()) or None
        async with self._pool.acquire() as conn:
            await db.alert_sent(conn, alert["id"], note)
        log.info("alert.sent", extra=fields | {"recipients": len(alert["recipients"]) - len(refused)})

    async def _failed(self, alert: asyncpg.Record, exc: BaseException, fields: dict[str, object]) -> None:
        error = f"{type(exc).__name__}: {exc}"
        async with self._pool.acquire() as conn:
            if smtp_verdict(exc) == "fail":
                await db.alert_failed(conn, alert["id"], error=error)
                log.error("alert.refused", extra=fields | {"error": error})
            elif alert["attempts"] >= self._tuning.max_attempts:
                await db.alert_failed(conn, alert["id"], error=f"gave up after {alert['attempts']} attempts: {error}")
                log.error("alert.gave_up", extra=fields | {"error": error})
            else:
                delay = retry_delay(alert["attempts"], base_s=self._tuning.retry_base_s,
                                    cap_s=self._tuning.retry_cap_s, jitter=self._jitter())
                await db.alert_retry(conn, alert["id"], error=error, delay_s=delay)
                log.warning("alert.retrying", extra=fields | {"error": error, "delay_s": round(delay, 1)})
