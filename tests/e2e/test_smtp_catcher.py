"""The demo's SMTP catcher as ``make demo`` runs it (a real ``python -m standins.smtp`` process): an alert
e-mailed by the usage service's mailer lands in it, is kept as .eml, and the dashboard's "Outbox (demo)"
page lists it for its organisation only."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import asyncpg
import httpx
import pytest

from deploy.stack import REPO
from harness.processes import free_port
from libs.common.alerts import AlertKind, raise_alert
from services.usage.mailer import AlertMailer, MailerTuning, SmtpConfig
from tests.conftest import eventually
from tests.integration import api_harness
from tests.integration.usage_harness import seed_org, seed_run
from tests.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.timeout(120)


class Catcher:
    def __init__(self, url: str, smtp_port: int, outbox: Path) -> None:
        self.url, self.smtp_port, self.outbox = url, smtp_port, outbox


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Catcher]:
    smtp_port, outbox = free_port(), tmp_path / "outbox"
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.smtp", "--port", "0", "--smtp-port", str(smtp_port), "--outbox", str(outbox)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    with proc.stdout:
        try:
            line = proc.stdout.readline()
            match = re.fullmatch(r"smtp-catcher listening on (http://127\.0\.0\.1:\d+)\n", line)
            assert match, line
            yield Catcher(match.group(1), smtp_port, outbox)
        finally:
            proc.terminate()
            assert proc.wait(10) in (0, -signal.SIGTERM)


@pytest.fixture
async def mailer(catcher: Catcher, db_pool: asyncpg.Pool) -> AsyncIterator[AlertMailer]:
    smtp = SmtpConfig("127.0.0.1", catcher.smtp_port, False, None, None, "Textpulse <alerts@textpulse.test>",
                      timeout_s=20)
    worker = AlertMailer(db_pool, smtp, tuning=MailerTuning(poll_s=0.05, retry_base_s=0.1, retry_cap_s=0.5))
    task = asyncio.create_task(worker.run())
    yield worker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def caught_for(catcher: Catcher, address: str) -> list[dict]:
    """What the catcher's API lists as received for ``address``."""
    async with httpx.AsyncClient(base_url=catcher.url, timeout=10) as client:
        return [m for m in (await client.get("/messages")).json() if address in m["rcpt_tos"]]


async def test_an_alert_sent_by_the_mailer_is_caught_kept_and_listed_on_the_outbox_page(
    catcher: Catcher, mailer: AlertMailer, db_pool: asyncpg.Pool, database_url: str, kafka: KafkaCluster
) -> None:
    office = f"office-{uuid.uuid4().hex[:8]}@harbor.test"
    org = await seed_org(db_pool, alert_emails=[office], campaign_name="Alaska storm closure")
    other = await seed_org(db_pool, alert_emails=[f"other-{uuid.uuid4().hex[:8]}@elsewhere.test"],
                           campaign_name="Someone else's gala")
    for target in (org, other):
        run_id = await seed_run(db_pool, target, state="paused")
        async with db_pool.acquire() as conn, conn.transaction():
            await raise_alert(conn, target.id, AlertKind.TWILIO_REFUSED, f"run:{run_id}:refused",
                              {"reason": "twilio_21408: Permission to send an SMS has not been enabled",
                               "error_code": 21408, "sent": 3, "failed": 0},
                              base_url="http://127.0.0.1:8000", run_id=run_id)

    messages = await eventually(lambda: caught_for(catcher, office), timeout=60)
    [mail] = messages
    subject = 'Campaign "Alaska storm closure" paused: Twilio refused the messages (error 21408)'
    assert mail["subject"] == subject and mail["rcpt_tos"] == [office]
    assert "geo permissions" in mail["text"]
    kept = message_from_bytes((catcher.outbox / mail["file"]).read_bytes(), policy=policy.default)
    assert kept["Message-ID"] == mail["message_id"] and kept.get_body(("html",)) is not None

    async def recorded_sent() -> bool:  # the mailer records the catcher's acceptance just after the catcher lists it
        state = await db_pool.fetchval("SELECT state FROM alerts WHERE message_id = $1", mail["message_id"])
        return state == "sent"

    await eventually(recorded_sent, timeout=30)

    async with api_harness.api_client(database_url, kafka.admin, demo_outbox_url=catcher.url) as client:
        caller = await api_harness.signed_in(db_pool, client, org.id)
        page = await client.get("/outbox", headers={**caller.headers, "Accept": "text/html"})
        assert page.status_code == 200, page.text
        assert "Outbox (demo)" in page.text and "Alaska storm closure" in page.text and office in page.text
        assert "caught" in page.text and "Someone else" not in page.text  # only this organisation's mail
    async with api_harness.api_client(database_url, kafka.admin) as client:  # no catcher configured
        caller = await api_harness.signed_in(db_pool, client, org.id)
        home = await client.get("/", headers={**caller.headers, "Accept": "text/html"})
        assert home.status_code == 200 and "Outbox (demo)" not in home.text
        assert (await client.get("/outbox", headers={**caller.headers, "Accept": "text/html"})).status_code == 404

