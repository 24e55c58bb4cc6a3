"""The usage service's outbox sampler on the real database: pending alert e-mails, iMIS write-backs and
unpublished events become /metrics gauges of rows waiting and the oldest's age; finished rows do not count."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY

from harness import factories
from services.usage.backlog import BacklogSampler

pytestmark = pytest.mark.timeout(120)

HOUR = 3600.0


async def _alert(conn: asyncpg.Connection, org_id: uuid.UUID, state: str, age_s: float) -> None:
    await conn.execute(
        """INSERT INTO alerts (org_id, kind, dedupe_key, recipients, subject, body_text, body_html, message_id, state,
                               created_at)
           VALUES ($1, 'run_failed', $2, ARRAY['ops@example.org'], 's', 't', '<p>t</p>', $2, $3,
                   now() - make_interval(secs => $4))""", org_id, f"<{uuid.uuid4()}@test>", state, age_s)


async def _writeback(conn: asyncpg.Connection, org_id: uuid.UUID, state: str, age_s: float) -> None:
    await conn.execute(
        """INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at, state, created_at)
           VALUES ($1, $2, '+14155550123', 'opt_out', 'STOP', now(), $3, now() - make_interval(secs => $4))""",
        org_id, uuid.uuid4().hex[:12], state, age_s)


async def _event(conn: asyncpg.Connection, published: bool, age_s: float) -> None:
    await conn.execute(
        """INSERT INTO event_outbox (topic, key, payload, created_at, published_at)
           VALUES ('consent', 'k', '{}', now() - make_interval(secs => $1),
                   CASE WHEN $2 THEN now() END)""", age_s, published)


def gauge(name: str, outbox: str) -> float:
    value = REGISTRY.get_sample_value(name, {"outbox": outbox})
    assert value is not None, f"{name}{{outbox={outbox}}} was never set"
    return value


async def test_the_sampler_counts_what_waits_and_how_long_the_oldest_has(db_pool: asyncpg.Pool) -> None:
    sampler = BacklogSampler(db_pool)
    before = await sampler.sample()
    async with db_pool.acquire() as conn:
        org_id = await factories.make_org(conn)
        await _alert(conn, org_id, "pending", 2 * HOUR)
        await _alert(conn, org_id, "pending", 60)
        await _alert(conn, org_id, "sent", 9 * HOUR)  # done: not waiting, however old
        await _writeback(conn, org_id, "pending", 3 * HOUR)
        await _writeback(conn, org_id, "done", 9 * HOUR)
        await _writeback(conn, org_id, "failed", 9 * HOUR)
        await _event(conn, published=False, age_s=HOUR)
        await _event(conn, published=True, age_s=9 * HOUR)
    after = await sampler.sample()

    added = {outbox: after[outbox][0] - before[outbox][0] for outbox in after}
    assert added == {"alerts": 2, "imis_writeback": 1, "events": 1}
    # Other tests' rows may be older still; these are at least as old as the oldest inserted here.
    assert after["alerts"][1] >= 2 * HOUR and after["imis_writeback"][1] >= 3 * HOUR and after["events"][1] >= HOUR
    for outbox, (waiting, oldest_s) in after.items():
        assert gauge("textpulse_outbox_backlog", outbox) == waiting
        assert gauge("textpulse_outbox_oldest_seconds", outbox) == oldest_s
