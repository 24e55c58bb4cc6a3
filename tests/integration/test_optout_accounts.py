"""The opt-out service's account directory (services/optout/signatures.py) on the real database: a revoked
auth token stops validating webhook signatures once the cache's TTL (5 s in production) has passed.
While PostgreSQL is unreachable the last account read is served. The clock is injected."""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import pytest

from harness.credentials import TEST_SECRETS, seal
from libs.common.db import create_pool
from libs.common.outages import POSTGRES_RETRYABLE
from libs.common.secret_store import AUTH_TOKEN
from services.optout.db import OptoutDb
from services.optout.main import OptoutTuning
from services.optout.signatures import AccountDirectory
from tests.integration import api_harness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_revoked_token_stops_validating_signatures_within_the_ttl(db_pool: asyncpg.Pool) -> None:
    org = await api_harness.make_org(db_pool)
    account_sid, old_token, new_token = "AC" + uuid.uuid4().hex, secrets.token_hex(16), secrets.token_hex(16)
    async with db_pool.acquire() as conn:
        await conn.execute("INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url) "
                           "VALUES ($1, $2, $3, 'https://hooks.example.org')",
                           org.id, account_sid, await seal(conn, org.id, AUTH_TOKEN, old_token))
    tuning, clock = OptoutTuning(), Clock()
    assert tuning.account_cache_s <= 5
    directory = AccountDirectory(db_pool, OptoutDb.load(TEST_SECRETS), ttl_s=tuning.account_cache_s,
                                 refresh_s=tuning.account_refresh_s, clock=clock)
    first = await directory.get(account_sid)
    assert first is not None and first.validator.token == old_token.encode() and first.org_id == org.id

    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE sms_accounts SET auth_token = $2 WHERE org_id = $1",
                           org.id, await seal(conn, org.id, AUTH_TOKEN, new_token))
    clock.now += tuning.account_cache_s - 0.1
    assert (await directory.get(account_sid)).validator.token == old_token.encode()  # type: ignore[union-attr]
    clock.now += 0.2
    assert (await directory.get(account_sid)).validator.token == new_token.encode()  # type: ignore[union-attr]
    assert old_token not in repr(await directory.get(account_sid))


async def test_the_last_known_account_is_served_while_postgres_is_unreachable(
    db_pool: asyncpg.Pool, database_url: str
) -> None:
    """Stale if error: signatures still validate during an outage (the request then goes to Kafka); an SID
    never read raises the outage, which the route answers 503."""
    org = await api_harness.make_org(db_pool)
    account_sid, token = "AC" + uuid.uuid4().hex, secrets.token_hex(16)
    async with db_pool.acquire() as conn:
        await conn.execute("INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url) "
                           "VALUES ($1, $2, $3, 'https://hooks.example.org')",
                           org.id, account_sid, await seal(conn, org.id, AUTH_TOKEN, token))
    own = await create_pool(database_url, min_size=0, max_size=2)
    clock = Clock()
    directory = AccountDirectory(own, OptoutDb.load(TEST_SECRETS), ttl_s=5.0, refresh_s=5.0, outage_retry_s=1.0,
                                 clock=clock)
    first = await directory.get(account_sid)
    assert first is not None and first.validator.token == token.encode()
    await own.close()  # every acquire now fails as an outage does
    clock.now += 60
    assert await directory.get(account_sid) is first
    assert await directory.refreshed(first) is None  # nothing fresher can be had
    with pytest.raises(POSTGRES_RETRYABLE):
        await directory.get("AC" + uuid.uuid4().hex)
