"""Credentials at rest (libs/common/secret_store.py) on the real database: plain rows sealed by the
migration step, a data key per organisation created once even by racing writers, a value copied to
another organisation refused, and a key rotation by ``python -m deploy.secrets rotate``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from deploy.migrate import migrate
from harness.databases import create_database, drop_database
from libs.common.envelope import SecretUnreadable
from libs.common.secret_store import (
    AUTH_TOKEN,
    IMIS_PASSWORD,
    SecretStore,
    data_keys_by_kek,
    keyring_from_settings,
    rewrap_data_keys,
)
from libs.common.settings import Settings
from tests.integration import api_harness

OLD_KEY = "the-old-key-encryption-secret-0123456789"
NEW_KEY = "the-new-key-encryption-secret-9876543210"


@pytest.fixture
async def database_and_url() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A database of its own, not yet migrated: a rotation re-wraps every organisation's data key."""
    name = f"textpulse_secrets_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    yield pool, url
    await pool.close()
    await drop_database(name)


@pytest.fixture
def database(database_and_url: tuple[asyncpg.Pool, str]) -> asyncpg.Pool:
    return database_and_url[0]


def store_with(key: str, previous: str | None = None) -> SecretStore:
    return SecretStore.from_settings(Settings(secret_key=key, secret_key_previous=previous))


async def plain_org(pool: asyncpg.Pool, token: str, imis_password: str) -> uuid.UUID:
    """An organisation whose credentials were written before they were sealed."""
    org = await api_harness.make_org(pool)
    await pool.execute("INSERT INTO sms_accounts (org_id, account_sid, auth_token, webhook_base_url) "
                       "VALUES ($1, $2, $3, 'https://hooks.example.org')", org.id, "AC" + uuid.uuid4().hex, token)
    await pool.execute("INSERT INTO imis_accounts (org_id, username, password) VALUES ($1, 'SMS', $2)",
                       org.id, imis_password)
    return org.id


async def test_the_migration_step_seals_plain_credentials_once(database: asyncpg.Pool) -> None:
    settings = Settings(secret_key=OLD_KEY, database_url="postgresql://unused")
    async with database.acquire() as conn:
        assert (await migrate(conn, settings))[1] == 0  # a fresh database: nothing to seal
    org_id = await plain_org(database, "plain-auth-token-of-org-one", "plain-imis-password")
    async with database.acquire() as conn:
        applied, sealed = await migrate(conn, settings)
        assert (applied, sealed) == ([], 2)
        row = await conn.fetchrow("SELECT a.auth_token, i.password FROM sms_accounts a JOIN imis_accounts i "
                                  "USING (org_id) WHERE org_id = $1", org_id)
        assert row["auth_token"].startswith("tp1:") and "plain" not in row["auth_token"] + row["password"]
        assert (await migrate(conn, settings))[1] == 0  # sealed values are left alone
        again = await conn.fetchrow("SELECT a.auth_token, i.password FROM sms_accounts a JOIN imis_accounts i "
                                    "USING (org_id) WHERE org_id = $1", org_id)
        assert tuple(again) == tuple(row)
        store = store_with(OLD_KEY)
        assert await store.open(conn, org_id, AUTH_TOKEN, row["auth_token"]) == "plain-auth-token-of-org-one"
        assert await store.open(conn, org_id, IMIS_PASSWORD, row["password"]) == "plain-imis-password"
        with pytest.raises(SecretUnreadable) as other_column:
            await store.open(conn, org_id, IMIS_PASSWORD, row["auth_token"])
        assert "plain-auth-token" not in str(other_column.value)


async def test_a_value_copied_to_another_organisation_does_not_open(database: asyncpg.Pool) -> None:
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
    first, second = (await api_harness.make_org(database)).id, (await api_harness.make_org(database)).id
    store = store_with(OLD_KEY)
    async with database.acquire() as conn:
        sealed = await store.seal(conn, first, AUTH_TOKEN, "token-of-the-first")
        await store.seal(conn, second, AUTH_TOKEN, "token-of-the-second")  # the second has a data key too
        with pytest.raises(SecretUnreadable) as refused:
            await store.open(conn, second, AUTH_TOKEN, sealed)
        assert refused.value.code == "data_key_missing" and "token-of-the-first" not in str(refused.value)


async def test_racing_first_writers_share_one_data_key(database: asyncpg.Pool) -> None:
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
    org_id = (await api_harness.make_org(database)).id
    stores = [store_with(OLD_KEY), store_with(OLD_KEY)]  # two processes: no shared cache

    async def seal_in_transaction(store: SecretStore, value: str) -> str:
        async with database.acquire() as conn, conn.transaction():
            sealed = await store.seal(conn, org_id, AUTH_TOKEN, value)
            await asyncio.sleep(0.05)  # hold the transaction so the other writer meets the uncommitted key
            return sealed

    sealed = await asyncio.gather(*(seal_in_transaction(s, f"value-{i}") for i, s in enumerate(stores)))
    assert await database.fetchval("SELECT count(*) FROM data_keys WHERE org_id = $1", org_id) == 1
    async with database.acquire() as conn:
        reader = store_with(OLD_KEY)
        assert [await reader.open(conn, org_id, AUTH_TOKEN, s) for s in sealed] == ["value-0", "value-1"]


async def test_rotation_rewraps_every_data_key_and_the_old_key_can_then_go(
    database: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
    orgs = [await plain_org(database, f"token-{i}", f"password-{i}") for i in range(3)]
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
        old_id = store_with(OLD_KEY).keyring.current_id
        assert await data_keys_by_kek(conn) == {old_id: 3}

        rotating = store_with(NEW_KEY, previous=OLD_KEY)
        tokens = [r["auth_token"] for r in await conn.fetch(
            "SELECT auth_token FROM sms_accounts WHERE org_id = ANY($1::uuid[]) ORDER BY array_position($1, org_id)",
            orgs)]
        # During the rotation a process with both keys reads every value, re-wrapped or not.
        assert await rotating.open(conn, orgs[0], AUTH_TOKEN, tokens[0]) == "token-0"
        assert await rewrap_data_keys(conn, rotating.keyring, batch=2) == 3
        assert await data_keys_by_kek(conn) == {rotating.keyring.current_id: 3}
        assert await rewrap_data_keys(conn, rotating.keyring) == 0  # idempotent

        new_only = store_with(NEW_KEY)
        assert [await new_only.open(conn, o, AUTH_TOKEN, t) for o, t in zip(orgs, tokens, strict=True)] == [
            "token-0", "token-1", "token-2"]
        with pytest.raises(SecretUnreadable) as forgotten:
            await store_with(OLD_KEY).open(conn, orgs[1], AUTH_TOKEN, tokens[1])
        assert forgotten.value.code == "secret_key_unknown"
        # A process started with only the old key says so at boot, naming key ids, never keys.
        caplog.clear()
        await store_with(OLD_KEY).check(conn)
        warned = [r for r in caplog.records if r.getMessage() == "secrets.key_unknown"]
        assert len(warned) == 1 and warned[0].unknown_keys == {rotating.keyring.current_id: 3}  # type: ignore[attr-defined]
        assert OLD_KEY not in caplog.text and NEW_KEY not in caplog.text
        caplog.clear()
        await new_only.check(conn)
        assert not [r for r in caplog.records if r.getMessage() == "secrets.key_unknown"]


async def test_the_rotate_command_rewraps_with_the_key_it_is_given(
    database_and_url: tuple[asyncpg.Pool, str]
) -> None:
    database, url = database_and_url
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
    org_id = await plain_org(database, "token-for-the-command", "password-for-the-command")
    async with database.acquire() as conn:
        await migrate(conn, Settings(secret_key=OLD_KEY))
    env = {**os.environ, "TEXTPULSE_DATABASE_URL": url, "TEXTPULSE_SECRET_KEY": NEW_KEY}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "deploy.secrets", *args], env={**env, **extra},
                              capture_output=True, text=True, timeout=120, check=False)

    without_old = run("rotate")
    assert without_old.returncode != 0 and "TEXTPULSE_SECRET_KEY_PREVIOUS" in without_old.stderr
    assert OLD_KEY not in without_old.stderr + without_old.stdout
    rotated = run("rotate", TEXTPULSE_SECRET_KEY_PREVIOUS=OLD_KEY)
    new_id = keyring_from_settings(Settings(secret_key=NEW_KEY)).current_id
    assert rotated.returncode == 0, rotated.stderr
    assert f"data keys re-wrapped with key {new_id}: 1" in rotated.stdout
    assert run("status").returncode == 0
    async with database.acquire() as conn:
        token = await conn.fetchval("SELECT auth_token FROM sms_accounts WHERE org_id = $1", org_id)
        assert await store_with(NEW_KEY).open(conn, org_id, AUTH_TOKEN, token) == "token-for-the-command"
