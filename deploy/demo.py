"""The demo's data: seeded organisations, their iMIS links, and two campaigns sent live through the API.

Run by ``python -m deploy.stack demo`` once every process is up. Idempotent: a second run finds the
seed and the live campaigns in place and only prints the sign-ins again.

- Alaska (about 360 members, one segment each, the default sender): finished in about 3 minutes.
- Québec (about 1,800 members, at least two segments each, alone on +18885550101): at 3 segments per
  second a sender sends about 10,800 segments an hour, so it keeps sending for 20 minutes or more, long
  enough for a newcomer to sign in and watch it on Home. Its ~4,000 segments stay inside the seeded
  campaign limit (20,000), the account's cap (30,000) and the plan's monthly allowance (50,000).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import httpx

from deploy.stack import kafka_access
from libs.common.secret_store import IMIS_PASSWORD, SecretStore
from libs.common.settings import load_settings
from services.api.auth import new_api_key
from services.api.seed import seed_demo
from standins.imis.config import ImisConfig

BY_CHAPTER = "$/Textpulse/Members By Chapter"


@dataclass(frozen=True)
class LiveCampaign:
    name: str
    body: str
    chapter: str  # the stand-in's chapter code: the IQA's first parameter
    sender: str | None = None  # None: the organisation's default sender

    @property
    def audience(self) -> dict[str, object]:
        return {"kind": "iqa", "query": BY_CHAPTER, "parameters": [f"eq:{self.chapter}", ""]}


QUICK = LiveCampaign(
    "Alaska chapter: storm closure update",
    "Hi {{first_name|there}}, the Anchorage office is closed today for the storm. "
    "CE sessions move online: harbornurses.example.org/ak. Reply STOP to opt out.",
    chapter="AK")
LONG = LiveCampaign(
    "Québec chapter: AGM and proxy forms",
    "Bonjour {{first_name|there}}! The Québec chapter AGM is on Thursday at 6pm, at the Montréal office and "
    "online. Agenda, proxy forms and the new CE schedule: harbornurses.example.org/qc-agm. Questions? Reply to "
    "this text. Reply STOP to opt out.",
    chapter="QC", sender="+18885550101")
LIVE_CAMPAIGNS = (QUICK, LONG)


async def prepare(database_url: str, api_url: str, optout_url: str) -> list[tuple[str, str]]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        # The local broker may run SASL_SSL: the settings then need a Kafka user's credentials to load.
        secrets = SecretStore.from_settings(load_settings(**kafka_access().settings_overrides()))
        sign_ins = await seed_demo(pool, secrets, webhook_base_url=optout_url)
        imis = ImisConfig()
        async with pool.acquire() as conn:
            # iMIS is the stand-in at TEXTPULSE_IMIS_BASE_URL (base_url null = the setting).
            for org in await conn.fetch("SELECT id FROM organisations o WHERE NOT EXISTS "
                                        "(SELECT 1 FROM imis_accounts a WHERE a.org_id = o.id)"):
                password = await secrets.seal(conn, org["id"], IMIS_PASSWORD, imis.password)
                await conn.execute("""INSERT INTO imis_accounts (org_id, username, password) VALUES ($1, $2, $3)
                                      ON CONFLICT (org_id) DO NOTHING""", org["id"], imis.username, password)
            org_id = await conn.fetchval("SELECT id FROM organisations WHERE slug = 'harbor-nurses'")
            missing = [c for c in LIVE_CAMPAIGNS if not await conn.fetchval(
                "SELECT 1 FROM campaigns WHERE org_id = $1 AND name = $2", org_id, c.name)]
            if missing:
                key = new_api_key()
                await conn.execute(
                    """INSERT INTO api_keys (org_id, name, prefix, key_hash, role, created_by)
                       VALUES ($1, 'demo script', $2, $3, 'staff', 'make demo')""", org_id, key.prefix, key.key_hash)
                for campaign in missing:
                    sender_id = await conn.fetchval(
                        "SELECT id FROM senders WHERE org_id = $1 AND address = $2", org_id,
                        campaign.sender) if campaign.sender else None
                    await _send_live_campaign(api_url, key.key, campaign, sender_id)
    finally:
        await pool.close()
    return sign_ins


async def _send_live_campaign(api_url: str, api_key: str, campaign: LiveCampaign, sender_id: UUID | None) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api:
        created = await api.post("/api/v1/campaigns", json={
            "name": campaign.name, "body": campaign.body, "audience": campaign.audience,
            "sender_id": str(sender_id) if sender_id else None, "contact_email": "office@harbornurses.example.org"})
        created.raise_for_status()
        campaign_id = created.json()["id"]
        sent = await api.post(f"/api/v1/campaigns/{campaign_id}/send-now",
                              headers={"Idempotency-Key": str(uuid.uuid4())})
        sent.raise_for_status()


def run(database_url: str, api_url: str, optout_url: str) -> list[tuple[str, str]]:
    return asyncio.run(prepare(database_url, api_url, optout_url))
