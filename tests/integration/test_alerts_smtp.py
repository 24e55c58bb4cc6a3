"""Alerts raised in a transaction, e-mailed over SMTP to a real local server (aiosmtpd): once each, both
parts, the right recipients; deduplicated; delayed, not lost, while the server is down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from harness.processes import free_port
from libs.common import run_reasons
from libs.common.alerts import AlertKind, raise_alert
from libs.common.errors import PermanentError
from services.usage.mailer import AlertMailer, MailerTuning, SmtpConfig
from services.usage.watcher import AlertWatcher, WatcherTuning
from tests.conftest import eventually
from tests.integration.usage_harness import Org, seed_org, seed_run

pytestmark = pytest.mark.timeout(60)

BASE = "https://app.textpulse.test"
FAST = MailerTuning(poll_s=0.05, retry_base_s=0.1, retry_cap_s=0.3, lease_s=5)


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """What the SMTP server received, in order."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(Received(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.envelope_to]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


def config(port: int) -> SmtpConfig:
    # A generous timeout: on a loaded machine a client timeout after the server took the message would
    # send it twice (delivery is at least once), and the tests count e-mails.
    return SmtpConfig("127.0.0.1", port, False, None, None, "Textpulse <alerts@textpulse.test>", timeout_s=20)


@pytest.fixture
async def mailer(smtp: SmtpServer, db_pool: asyncpg.Pool) -> AsyncIterator[AlertMailer]:
    worker = AlertMailer(db_pool, config(smtp.port), tuning=FAST)
    task = asyncio.create_task(worker.run())
    yield worker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def addresses(tag: str) -> tuple[str, str, str]:
    return f"ops-{tag}@acme.test", f"board-{tag}@acme.test", f"jane-{tag}@acme.test"


async def alert_rows(pool: asyncpg.Pool, org: Org) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM alerts WHERE org_id = $1 ORDER BY id", org.id)


async def raise_in_transaction(pool: asyncpg.Pool, org: Org, kind: AlertKind, key: str, context: dict[str, Any],
                               **options: Any) -> int | None:
    async with pool.acquire() as conn, conn.transaction():
        return await raise_alert(conn, org.id, kind, key, context, base_url=BASE, **options)


async def test_an_alert_arrives_once_with_both_parts_to_the_org_and_the_campaign_contact(
    smtp: SmtpServer, mailer: AlertMailer, db_pool: asyncpg.Pool
) -> None:
    ops, board, jane = addresses(uuid.uuid4().hex[:8])
    org = await seed_org(db_pool, alert_emails=[ops, board, ops.upper()], contact_email=jane,
                         campaign_name="Spring renewals")
    run_id = await seed_run(db_pool, org, state="paused")
    context = {"reason": "twilio_21408: Permission to send an SMS has not been enabled", "error_code": 21408,
               "sent": 12, "failed": 0}
    first = await raise_in_transaction(db_pool, org, AlertKind.TWILIO_REFUSED, f"run:{run_id}:x", context,
                                       run_id=run_id)
    again = await raise_in_transaction(db_pool, org, AlertKind.TWILIO_REFUSED, f"run:{run_id}:x", context,
                                       run_id=run_id)
    assert first is not None and again is None  # the same condition for the same run: once

    await eventually(lambda: smtp.inbox.to(ops))
    await eventually(lambda: _states(db_pool, org, {"sent"}))
    [mail] = smtp.inbox.to(ops)
    assert sorted(mail.envelope_to) == sorted([ops, board, jane])
    message = mail.message
    # (strip: a long subject is folded onto a continuation line, which the parser keeps a space of)
    assert message["Subject"].strip() == 'Campaign "Spring renewals" paused: Twilio refused the messages (error 21408)'
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Textpulse-Alert"] == "twilio_refused"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = f"{BASE}/campaigns/{org.campaign_id}?run={run_id}"
    for part in (text, html):
        assert "geo permissions" in part and link in part and "Spring renewals" in part
    [row] = await alert_rows(db_pool, org)
    assert row["state"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    assert row["message_id"] == message["Message-ID"]


async def test_a_condition_raised_after_its_quiet_period_is_sent_again_as_a_reminder(
    smtp: SmtpServer, mailer: AlertMailer, db_pool: asyncpg.Pool
) -> None:
    from datetime import timedelta

    ops, _, _ = addresses(uuid.uuid4().hex[:8])
    org = await seed_org(db_pool, alert_emails=[ops])
    context = {"pending": 12, "oldest_at": "2026-03-09T08:30:00+00:00", "last_error": None}
    for _ in range(2):
        await raise_in_transaction(db_pool, org, AlertKind.WRITEBACK_STUCK, "imis_writeback_stuck", context,
                                   quiet_period=timedelta(0))
    await eventually(lambda: len(smtp.inbox.to(ops)) == 2)
    subjects = [r.message["Subject"].strip() for r in smtp.inbox.to(ops)]
    assert subjects[1] == f"Reminder: {subjects[0]}"


async def test_two_services_raising_the_same_condition_at_once_queue_one_alert(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool)
    run_id = await seed_run(db_pool, org, state="missed")
    context = {"reason": "found 7200 s late", "occurrence_at": "2026-03-09T08:30:00+00:00"}
    results = await asyncio.gather(*(
        raise_in_transaction(db_pool, org, AlertKind.RUN_MISSED, f"run:{run_id}:run_missed", context, run_id=run_id)
        for _ in range(4)))
    assert sum(r is not None for r in results) == 1
    [row] = await alert_rows(db_pool, org)
    assert row["state"] == "skipped" and row["last_error"].startswith("no_recipients")  # listed, never sent


async def test_a_bad_context_or_an_unknown_run_rolls_the_callers_transaction_back(db_pool: asyncpg.Pool) -> None:
    org = await seed_org(db_pool)
    with pytest.raises(PermanentError) as missing:
        await raise_in_transaction(db_pool, org, AlertKind.USAGE_80, "usage_80:2026-03", {"month": "March 2026"})
    with pytest.raises(PermanentError) as unknown:
        await raise_in_transaction(db_pool, org, AlertKind.RUN_FAILED, "k", {}, run_id=uuid.uuid4())
    assert (missing.value.code, unknown.value.code) == ("alert_context_invalid", "run_unknown")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alert_conditions WHERE org_id = $1", org.id) == 0
    assert await alert_rows(db_pool, org) == []


async def test_while_the_smtp_server_is_down_alerts_are_retried_and_then_arrive_once(db_pool: asyncpg.Pool) -> None:
    down = SmtpServer(free_port())
    worker = AlertMailer(db_pool, config(down.port), tuning=FAST)
    task = asyncio.create_task(worker.run())
    try:
        ops, _, jane = addresses(uuid.uuid4().hex[:8])
        org = await seed_org(db_pool, alert_emails=[ops], contact_email=jane)
        run_id = await seed_run(db_pool, org, state="failed")
        await raise_in_transaction(db_pool, org, AlertKind.IQA_FAILED, f"run:{run_id}:iqa_failed",
                                   {"reason": "iqa_not_found: $/Textpulse/Gone"}, run_id=run_id)
        retried = await eventually(lambda: _retried(db_pool, org), timeout=10)
        assert retried["state"] == "pending" and "Connect" in retried["last_error"]
        down.start()
        await eventually(lambda: down.inbox.to(ops), timeout=10)
        await eventually(lambda: _states(db_pool, org, {"sent"}))  # a sent alert is never claimed again
        assert len(down.inbox.to(ops)) == 1 and down.inbox.to(ops)[0].envelope_to == [ops, jane]
        [row] = await alert_rows(db_pool, org)
        # At least one failed attempt before the one that got through (which may have been claimed already,
        # and so counted, when the server started).
        assert row["attempts"] >= 2 and row["last_error"] is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        down.stop()


async def test_the_watcher_alerts_each_stopped_run_once_with_its_figures(
    smtp: SmtpServer, mailer: AlertMailer, db_pool: asyncpg.Pool
) -> None:
    ops, _, _ = addresses(uuid.uuid4().hex[:8])
    org = await seed_org(db_pool, alert_emails=[ops])
    paused = await seed_run(db_pool, org, state="paused", reason=run_reasons.failure_threshold(25, 200))
    missed = await seed_run(db_pool, org, state="missed", reason=run_reasons.too_late(7200, 3600))
    await seed_run(db_pool, org, state="paused")  # by staff: no alert
    sent_some = await seed_run(db_pool, org, state="completed")
    await db_pool.execute("UPDATE campaign_runs SET sent = 3 WHERE id = $1", sent_some)  # no alert
    nothing = await seed_run(db_pool, org, state="completed", reason=run_reasons.no_recipients(12))
    async with db_pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO send_ledger (run_id, recipient_id, org_id, sender, to_number, segments, state, error_code) "
            "VALUES ($1, $2, $3, '+18885550100', '+14155550100', 1, 'failed', $4)",
            [(paused, uuid.uuid4(), org.id, code) for code in [30007] * 20 + [21211] * 5])
    watcher = AlertWatcher(db_pool, base_url=BASE, tuning=WatcherTuning(batch=1000))
    await watcher.check_runs()
    await watcher.check_runs()  # looked at already: nothing new

    assert sorted(r["kind"] for r in await alert_rows(db_pool, org)) == ["failure_threshold", "nothing_sent",
                                                                         "run_missed"]
    await eventually(lambda: _states(db_pool, org, {"sent"}))
    mails = {r.message["X-Textpulse-Alert"]: r.message for r in smtp.inbox.to(ops)}
    assert set(mails) == {"failure_threshold", "nothing_sent", "run_missed"} and len(smtp.inbox.to(ops)) == 3
    nothing_text = mails["nothing_sent"].get_body(("plain",)).get_content()
    assert "all 12 members were excluded" in nothing_text and f"?run={nothing}" in nothing_text
    text = mails["failure_threshold"].get_body(("plain",)).get_content()
    assert "30007: the carrier filtered the message as spam or a violation (20 messages)" in text
    assert "21211: the phone number is not valid (5 messages)" in text
    assert f"/campaigns/{org.campaign_id}?run={paused}" in text
    assert f"/campaigns/{org.campaign_id}" in mails["run_missed"].get_body(("html",)).get_content()
    async with db_pool.acquire() as conn:
        marks = await conn.fetch("SELECT run_id, kind FROM run_alert_marks m JOIN campaign_runs r ON r.id = m.run_id "
                                 "WHERE r.org_id = $1", org.id)
    assert {m["run_id"]: m["kind"] for m in marks if m["kind"]} == {paused: "failure_threshold", missed: "run_missed",
                                                                     nothing: "nothing_sent"}
    assert len(marks) == 4  # the staff pause is marked too, so it is not looked at again


async def _states(pool: asyncpg.Pool, org: Org, states: set[str]) -> bool:
    rows = await alert_rows(pool, org)
    return bool(rows) and {r["state"] for r in rows} <= states


async def _retried(pool: asyncpg.Pool, org: Org) -> asyncpg.Record | None:
    rows = await alert_rows(pool, org)
    return rows[0] if rows and rows[0]["attempts"] >= 2 and rows[0]["last_error"] else None


async def test_webhooks_that_keep_failing_signature_validation_alert_the_organisation_once(
    smtp: SmtpServer, mailer: AlertMailer, db_pool: asyncpg.Pool
) -> None:
    ops, _, _ = addresses(uuid.uuid4().hex[:8])
    failing, quiet = await seed_org(db_pool, alert_emails=[ops]), await seed_org(db_pool, alert_emails=[ops])
    url = "https://sms.acme.test/twilio/inbound"
    async with db_pool.acquire() as conn:  # as the opt-out service counts them, per minute
        await conn.executemany(
            "INSERT INTO webhook_signature_refusals (org_id, minute, refusals, last_url) "
            "VALUES ($1, date_trunc('minute', now()) - make_interval(mins => $2), $3, $4)",
            [(failing.id, 1, 12, url), (failing.id, 0, 9, url),
             (quiet.id, 0, 5, url), (quiet.id, 30, 500, url)])  # quiet: a few now, many long ago
    watcher = AlertWatcher(db_pool, base_url=BASE, tuning=WatcherTuning())
    await watcher.check_signatures()
    await watcher.check_signatures()  # still failing: within its quiet period, not e-mailed again

    assert [r["kind"] for r in await alert_rows(db_pool, failing)] == ["webhook_signatures_failing"]
    assert await alert_rows(db_pool, quiet) == []
    await eventually(lambda: _states(db_pool, failing, {"sent"}))
    [mail] = [r.message for r in smtp.inbox.to(ops)]
    text = mail.get_body(("plain",)).get_content()
    assert "21 webhooks" in text and url in text and "/settings#account-title" in text
