"""PostgreSQL enforces the campaign and run transition tables (migration 0033, libs/common/state_tables.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from deploy.migrate import migrate
from libs.common import campaign_states, run_states
from libs.common.db import apply_migrations
from libs.common.settings import Settings
from libs.common.state_tables import allowed_moves, stored_moves
from tests.conftest import create_database, drop_database


@pytest.fixture
async def conn(db_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose writes are rolled back at the end of the test."""
    async with db_pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        yield connection
        await transaction.rollback()


async def _campaign(conn: asyncpg.Connection, state: str) -> uuid.UUID:
    org = await conn.fetchval("INSERT INTO organisations (slug, name) VALUES ($1, $1) RETURNING id",
                              f"states-{uuid.uuid4().hex[:12]}")
    campaign: uuid.UUID = await conn.fetchval(
        "INSERT INTO campaigns (org_id, name, body, state) VALUES ($1, 'States', 'Hi', $2) RETURNING id", org, state)
    return campaign


async def _run(conn: asyncpg.Connection, state: str) -> uuid.UUID:
    campaign = await _campaign(conn, "sending")
    run: uuid.UUID = await conn.fetchval(
        "INSERT INTO campaign_runs (org_id, campaign_id, occurrence_at, state) "
        "SELECT org_id, id, now(), $2 FROM campaigns WHERE id = $1 RETURNING id", campaign, state)
    return run


async def test_the_database_holds_exactly_the_python_tables(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as conn:
        assert await stored_moves(conn) == allowed_moves()
    assert ("run", "sending", "paused") in allowed_moves() and ("campaign", "completed", "archived") in allowed_moves()


async def test_the_boot_step_rewrites_a_drifted_table() -> None:
    name = f"textpulse_states_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            await conn.execute("DELETE FROM state_transitions WHERE machine = 'run' AND from_state = 'paused'")
            await conn.execute("INSERT INTO state_transitions VALUES ('campaign', 'archived', 'draft')")
            await migrate(conn, Settings(database_url=url))
            assert await stored_moves(conn) == allowed_moves()
        finally:
            await conn.close()
    finally:
        await drop_database(name)


async def test_a_forbidden_campaign_move_written_by_hand_is_refused(conn: asyncpg.Connection) -> None:
    campaign = await _campaign(conn, "completed")
    refusal = "campaign .+: cannot go from completed to sending"
    with pytest.raises(asyncpg.CheckViolationError, match=refusal) as refused:
        async with conn.transaction():
            await conn.execute("UPDATE campaigns SET state = 'sending' WHERE id = $1", campaign)
    assert refused.value.constraint_name == "state_transitions" and refused.value.table_name == "campaigns"
    assert await conn.fetchval("SELECT state FROM campaigns WHERE id = $1", campaign) == "completed"


async def test_a_forbidden_run_move_written_by_hand_is_refused(conn: asyncpg.Connection) -> None:
    run = await _run(conn, "completed")
    with pytest.raises(asyncpg.CheckViolationError, match=f"run {run}: cannot go from completed to sending"):
        async with conn.transaction():
            await conn.execute("UPDATE campaign_runs SET state = 'sending' WHERE id = $1", run)
    # An allowed move, and a write that leaves the state as it is, go through.
    allowed = await _run(conn, "sending")
    await conn.execute("UPDATE campaign_runs SET state = 'paused' WHERE id = $1", allowed)
    await conn.execute("UPDATE campaign_runs SET state = state, sent = 3 WHERE id = $1", run)
    assert await conn.fetchval("SELECT state FROM campaign_runs WHERE id = $1", allowed) == "paused"


@pytest.mark.parametrize(("machine", "table"), [("campaign", campaign_states.TRANSITIONS),
                                                ("run", run_states.TRANSITIONS)])
async def test_the_trigger_accepts_each_allowed_move_and_refuses_every_other(
    conn: asyncpg.Connection, machine: str, table: dict[str, frozenset[str]]
) -> None:
    make, sql_table = (_campaign, "campaigns") if machine == "campaign" else (_run, "campaign_runs")
    accepted, refused = set(), set()
    for current in table:
        for target in table:
            if current == target:
                continue
            row = await make(conn, current)
            try:
                async with conn.transaction():
                    await conn.execute(f"UPDATE {sql_table} SET state = $2 WHERE id = $1", row, target)
                accepted.add((current, target))
            except asyncpg.CheckViolationError:
                refused.add((current, target))
    assert accepted == {(c, t) for c, targets in table.items() for t in targets}
    assert len(accepted) + len(refused) == len(table) * (len(table) - 1)
