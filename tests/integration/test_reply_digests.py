"""Reply digests over SMTP to a real local server: one e-mail per campaign and window, to the campaign's
contact only, naming who replied; never twice (two passes at once, a restart), none when turned off."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from services.usage.mailer import AlertMailer
from services.usage.reply_digests import DigestTuning, ReplyDigester, member_label
from tests.conftest import eventually
from tests.integration.test_alerts_smtp import BASE, SmtpServer, addresses, mailer, smtp
from tests.integration.usage_harness import Org, seed_org, seed_run

pytestmark = pytest.mark.timeout(60)
__all__ = ["mailer", "smtp"]  # the fixtures, shared with the alert tests

HOUR = DigestTuning(window_s=3600, poll_s=0.05)
SENDER = "+18885550180"


async def reply(pool: asyncpg.Pool, org: Org, run_id: uuid.UUID | None, phone: str, *, kind: str = "other",
                recipient_id: uuid.UUID | None = None, ago: str = "1 minute") -> None:
    await pool.execute(
        "INSERT INTO inbound_messages (org_id, message_sid, from_number, phone, to_number, body, kind, run_id,"
        " recipient_id, received_at)"
        " VALUES ($1, $2, $3, $3, $4, 'When is it?', $5, $6, $7, now() - $8::text::interval)",
        org.id, "SM" + uuid.uuid4().hex, phone, SENDER, kind, run_id, recipient_id, ago)


async def recipient(pool: asyncpg.Pool, org: Org, run_id: uuid.UUID, member_id: str, first: str,
                    last: str) -> uuid.UUID:
    recipient_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO run_recipients (run_id, position, recipient_id, org_id, member_id, e164, merge_values, body,"
        " segments, status) VALUES ($1, (SELECT count(*) FROM run_recipients WHERE run_id = $1), $2, $3, $4,"
        " '+16175550171', $5::jsonb, 'Hi', 1, 'queued')",
        run_id, recipient_id, org.id, member_id, f'{{"FirstName": "{first}", "LastName": "{last}"}}')
    return recipient_id


async def digests_on(pool: asyncpg.Pool, org: Org) -> None:
    await pool.execute("UPDATE organisations SET reply_digests_since = now() - interval '1 hour' WHERE id = $1", org.id)


def test_members_are_named_by_name_and_imis_id_and_never_by_number() -> None:
    assert member_label("Ana Diaz", "1001") == "Ana Diaz (iMIS 1001)"
    assert member_label(" ", "1002") == "iMIS 1002"
    assert member_label("Bo Li", "") == "Bo Li"
    assert member_label(None, "") is None


async def test_one_digest_a_window_to_the_contact_only_never_twice(
    smtp: SmtpServer, mailer: AlertMailer, db_pool: asyncpg.Pool
) -> None:
    ops, _, jane = addresses(uuid.uuid4().hex[:8])
    org = await seed_org(db_pool, alert_emails=[ops], contact_email=jane, campaign_name="Gala night")
    await digests_on(db_pool, org)
    run_id = await seed_run(db_pool, org, state="completed")
    ana = await recipient(db_pool, org, run_id, "1001", "Ana", "Diaz")
    await reply(db_pool, org, run_id, "+16175550171", recipient_id=ana)
    await reply(db_pool, org, run_id, "+16175550171", recipient_id=ana)
    await reply(db_pool, org, run_id, "+16175550172")  # not in the snapshot: counted, not named
    await reply(db_pool, org, run_id, "+16175550173", kind="opt_out")  # a keyword: not the Inbox's
    await reply(db_pool, org, run_id, "+16175550174", ago="2 hours")  # before the digests were turned on

    first, second = ReplyDigester(db_pool, base_url=BASE, tuning=HOUR), ReplyDigester(db_pool, base_url=BASE,
                                                                                      tuning=HOUR)
    assert sorted(await asyncio.gather(first.run_once(), second.run_once())) == [0, 1]

    await eventually(lambda: smtp.inbox.to(jane))
    [mail] = smtp.inbox.to(jane)
    assert mail.envelope_to == [jane] and not smtp.inbox.to(ops)
    assert mail.message["Subject"].strip() == '3 new replies to "Gala night"'
    assert mail.message["X-Textpulse-Alert"] == "replies_waiting"
    text = mail.message.get_body(("plain",)).get_content()
    assert "Ana Diaz (iMIS 1001)" in text and text.count("Ana Diaz") == 1
    assert "+1617555017" not in text  # members' numbers are not e-mailed
    assert f"{BASE}/inbox?campaign={org.campaign_id}" in text

    # A reply in the same window waits, also for a restarted service; the next window sends it.
    await reply(db_pool, org, run_id, "+16175550175")
    restarted = ReplyDigester(db_pool, base_url=BASE, tuning=HOUR)
    assert await restarted.run_once() == 0
    next_window = ReplyDigester(db_pool, base_url=BASE, tuning=DigestTuning(window_s=1))  # windows of a second
    assert await eventually(next_window.run_once) == 1
    assert await next_window.run_once() == 0  # nothing new
    await eventually(lambda: len(smtp.inbox.to(jane)) == 2)
    assert smtp.inbox.to(jane)[1].message["Subject"].strip() == '1 new reply to "Gala night"'
    rows = await db_pool.fetch("SELECT replies, alert_id IS NOT NULL AS queued FROM reply_digests"
                               " WHERE campaign_id = $1 ORDER BY window_start", org.campaign_id)
    assert [(r["replies"], r["queued"]) for r in rows] == [(3, True), (1, True)]


async def test_no_digest_when_turned_off_or_without_a_contact(db_pool: asyncpg.Pool) -> None:
    off = await seed_org(db_pool, contact_email="jane@acme.test")
    no_contact = await seed_org(db_pool, alert_emails=["ops@acme.test"])
    await digests_on(db_pool, no_contact)
    for org in (off, no_contact):
        await reply(db_pool, org, await seed_run(db_pool, org, state="completed"), "+16175550176")
    assert await ReplyDigester(db_pool, base_url=BASE, tuning=HOUR).run_once() == 0
    count = await db_pool.fetchval("SELECT count(*) FROM reply_digests WHERE org_id = ANY($1)", [off.id, no_contact.id])
    assert count == 0
