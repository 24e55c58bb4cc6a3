"""The demo's data: seeded organisations, their iMIS links, and one campaign sent live through the API.

Run by ``python -m deploy.stack demo`` once every process is up. Idempotent: a second run finds the
seed and the live campaign in place and only prints the sign-ins again.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from services.api.auth import new_api_key
from services.api.seed import seed_demo
from standins.imis.config import ImisConfig

LIVE_CAMPAIGN = "Alaska chapter: storm closure update"
LIVE_BODY = ("Hi {{first_name|there}}, the Anchorage office is closed today for the storm. "
             "CE sessions move online: harbornurses.example.org/ak. Reply STOP to opt out.")
# About 400 members of the stand-in's 100,000 are in the Alaska chapter: a run of a few minutes at
# 3 segments/s, long enough to watch its progress on Home.
LIVE_AUDIENCE = {"kind": "iqa", "query": "$/Textpulse/Members By Chapter", "parameters": ["eq:AK", ""]}


async def prepare(database_url: str, api_url: str, optout_url: str) -> list[tuple[str, str]]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        sign_ins = await seed_demo(pool, webhook_base_url=optout_url)
        imis = ImisConfig()
        async with pool.acquire() as conn:
            # iMIS is the stand-in at TEXTPULSE_IMIS_BASE_URL (base_url null = the setting).
            await conn.execute(
                """INSERT INTO imis_accounts (org_id, username, password)
                   SELECT id, $1, $2 FROM organisations ON CONFLICT (org_id) DO NOTHING""",
                imis.username, imis.password)
            org_id = await conn.fetchval("SELECT id FROM organisations WHERE slug = 'harbor-nurses'")
            exists = await conn.fetchval("SELECT 1 FROM campaigns WHERE org_id = $1 AND name = $2",
                                         org_id, LIVE_CAMPAIGN)
            if not exists:
                key = new_api_key()
                await conn.execute(
                    """INSERT INTO api_keys (org_id, name, prefix, key_hash, role, created_by)
                       VALUES ($1, 'demo script', $2, $3, 'staff', 'make demo')""", org_id, key.prefix, key.key_hash)
                await _send_live_campaign(api_url, key.key)
    finally:
        await pool.close()
    return sign_ins


async def _send_live_campaign(api_url: str, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api:
        created = await api.post("/api/v1/campaigns", json={
            "name": LIVE_CAMPAIGN, "body": LIVE_BODY, "audience": LIVE_AUDIENCE,
            "contact_email": "office@harbornurses.example.org"})
        created.raise_for_status()
        campaign_id = created.json()["id"]
        sent = await api.post(f"/api/v1/campaigns/{campaign_id}/send-now",
                              headers={"Idempotency-Key": str(uuid.uuid4())})
        sent.raise_for_status()


def run(database_url: str, api_url: str, optout_url: str) -> list[tuple[str, str]]:
    return asyncio.run(prepare(database_url, api_url, optout_url))
