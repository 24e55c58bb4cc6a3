import uuid
from pathlib import Path

import asyncpg
import pytest

from harness.databases import create_database, drop_database
from libs.common.db import MIGRATIONS_DIR, apply_migrations, discover_migrations
from libs.common.errors import ConfigurationError


@pytest.fixture
async def empty_database() -> str:
    name = f"textpulse_mig_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    yield url
    await drop_database(name)


async def test_migrations_apply_in_order_and_twice_is_a_no_op(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        first = await apply_migrations(conn)
        second = await apply_migrations(conn)
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        org = await conn.fetchrow("INSERT INTO organisations (slug, name) VALUES ('acme', 'Acme') RETURNING *")
    finally:
        await conn.close()
    every = [m.version for m in discover_migrations()]
    assert first == every and second == [] and recorded == every
    assert org["default_country_prefix"] == "+1" and org["campaign_segment_limit"] == 20000


async def test_two_runners_at_once_apply_each_migration_once(empty_database: str) -> None:
    import asyncio

    conns = [await asyncpg.connect(empty_database) for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sorted(results, key=len) == [[], [m.version for m in discover_migrations()]]


async def test_an_applied_migration_that_changed_is_refused(empty_database: str, tmp_path: Path) -> None:
    for source in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, tmp_path)
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after the fact\n")
        with pytest.raises(ConfigurationError, match="changed after it was applied"):
            await apply_migrations(conn, tmp_path)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE a (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE b (id int); SELECT no_such_function();")
    conn = await asyncpg.connect(empty_database)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(conn, tmp_path)
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        has_b = await conn.fetchval("SELECT to_regclass('b') IS NOT NULL")
    finally:
        await conn.close()
    assert versions == [1] and not has_b


async def test_0046_keeps_existing_imis_accounts_on_the_panel_and_new_ones_get_activities(
    empty_database: str, tmp_path: Path
) -> None:
    for source in MIGRATIONS_DIR.glob("*.sql"):
        if int(source.name[:4]) < 46:
            (tmp_path / source.name).write_text(source.read_text())
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, tmp_path)
        old = await conn.fetchval("INSERT INTO organisations (slug, name) VALUES ('old', 'Old') RETURNING id")
        await conn.execute("INSERT INTO imis_accounts (org_id, username, password) VALUES ($1, 'u', 'p')", old)
        migration = next(MIGRATIONS_DIR.glob("0046_*.sql"))
        (tmp_path / migration.name).write_text(migration.read_text())
        assert await apply_migrations(conn, tmp_path) == [46]
        new = await conn.fetchval("INSERT INTO organisations (slug, name) VALUES ('new', 'New') RETURNING id")
        await conn.execute("INSERT INTO imis_accounts (org_id, username, password) VALUES ($1, 'u', 'p')", new)
        targets = {r["org_id"]: r["writeback_target"]
                   for r in await conn.fetch("SELECT org_id, writeback_target FROM imis_accounts")}
    finally:
        await conn.close()
    assert targets == {old: "panel", new: "activity"}
