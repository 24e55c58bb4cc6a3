"""Migration 0034 gives the reasons stored as "<code>: <words>" their code and facts; the sentence stays."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import asyncpg

from libs.common.db import MIGRATIONS_DIR, apply_migrations
from libs.common.run_reasons import RunReason
from services.usage.conditions import classify_run
from tests.conftest import create_database, drop_database

OLD_REASONS = {
    "sender_unverified: +18885550100 is pending and cannot text US/Canada; 3 of 4 recipients are there":
        ("sender_unverified", {"sender": "+18885550100", "verification": "pending"}),
    "twilio_20003: Authenticate": ("twilio_20003", {"error_code": 20003}),
    "failure_threshold: 25 of the last 200 sends failed": ("failure_threshold", {}),
    "paused by jane@example.org": ("unspecified", {}),
}


async def test_stored_reasons_get_their_code_and_facts(tmp_path: Path) -> None:
    for source in MIGRATIONS_DIR.glob("*.sql"):
        if int(source.name[:4]) < 34:
            shutil.copy(source, tmp_path / source.name)
    name = f"textpulse_reasons_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, tmp_path)
        org = await conn.fetchval("INSERT INTO organisations (slug, name) VALUES ('old', 'Old') RETURNING id")
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (org_id, name, body) VALUES ($1, 'Old', 'Hi') RETURNING id", org)
        for i, reason in enumerate([*OLD_REASONS, None]):
            await conn.execute("INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state, state_reason) "
                               "VALUES ($1, $2, now() + make_interval(mins => $3), 'paused', $4)",
                               org, campaign, i, reason)
        await apply_migrations(conn)
        rows = await conn.fetch("SELECT state_reason, state_reason_code, state_reason_detail::text AS detail "
                                "FROM campaign_runs")
    finally:
        await conn.close()
        await drop_database(name)
    migrated = {r["state_reason"]: (r["state_reason_code"], json.loads(r["detail"])) for r in rows}
    assert migrated.pop(None) == (None, {})
    for sentence, (code, facts) in OLD_REASONS.items():
        stored_code, detail = migrated[sentence]
        assert stored_code == code and detail.items() >= facts.items(), sentence
        reason = RunReason.from_stored(stored_code, detail)
        assert reason is not None and reason.text == (sentence if code != "unspecified" else f"{code}: {sentence}")
    twilio = RunReason.from_stored(*migrated["twilio_20003: Authenticate"])
    assert classify_run("paused", twilio) is not None and classify_run("paused", RunReason.from_stored(
        *migrated["paused by jane@example.org"])) is None
