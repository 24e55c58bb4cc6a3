"""The audience service's SQL: named queries from queries.sql; the stage a run's audience is read into is
:mod:`services.audience.stage_db`'s."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from libs.common import erased_suppressions, run_endings, run_reasons
from libs.common.audience_members import ColumnMap
from libs.common.audience_rules import Totals, Verdict
from libs.common.db import Connection, Queries
from libs.common.imis_iqa import Endpoint
from libs.common.run_endings import follow_run, lock_campaign_of_run
from libs.common.secret_store import IMIS_PASSWORD, SecretStore
from services.audience import stage_db
from services.audience.stage_db import Stage

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))


@dataclass(frozen=True, slots=True)
class RunContext:
    run_id: uuid.UUID
    org_id: uuid.UUID
    campaign_id: uuid.UUID
    run_state: str
    body: str
    audience: Any
    segment_limit: int
    validity_period_s: int
    default_country_prefix: str
    sender: str | None
    sender_verification: str | None
    account_max_segments: int | None
    run_member_cap: int | None  # the organisation's own cap (0030); None: the platform's
    track_links: bool = False  # the run's links become tracked short links (0047)
    short_link_base_url: str | None = None  # the organisation's short domain; None: the platform's


@dataclass(frozen=True, slots=True)
class ImisAccount:
    base_url: str | None
    username: str
    password: str = field(repr=False)
    query_endpoint: Endpoint = "iqa"  # /api/Query or /api/IQA, as detected when the account was linked


@dataclass(frozen=True, slots=True)
class StoredMember:
    member_id: str
    mobile: str | None
    merge_values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Unpublished:
    position: int
    recipient_id: uuid.UUID
    e164: str
    body: str
    segments: int
    sender: str


class AudienceStore:
    def __init__(self, pool: asyncpg.Pool, secrets: SecretStore) -> None:
        self._pool = pool
        self._q = QUERIES
        self._secrets = secrets

    async def check(self) -> None:
        """Prepare every statement: a query that does not match the schema fails at start-up."""
        async with self._pool.acquire() as conn:
            await self._q.check(conn)
            await run_endings.QUERIES.check(conn)
            await erased_suppressions.QUERIES.check(conn)
            await self._secrets.check(conn)
            checking = conn.transaction()
            await checking.start()
            try:  # the stage's statements need the stage: made for the check, gone with the rollback
                await stage_db.QUERIES.execute(conn, "create-stage")
                await stage_db.QUERIES.check(conn)
            finally:
                await checking.rollback()

    # -- reading a run and its audience ----------------------------------------------------------

    async def run_context(self, run_id: uuid.UUID) -> RunContext | None:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "run-context", run_id=run_id)
        if row is None:
            return None
        values = dict(row)
        values["audience"] = json.loads(values["audience"])
        return RunContext(**values)

    async def run_is_due(self, run_id: uuid.UUID) -> bool:
        async with self._pool.acquire() as conn:
            return bool(await self._q.fetchval(conn, "run-due", run_id=run_id))

    async def begin_resolving(self, run_id: uuid.UUID) -> bool:
        async with self._pool.acquire() as conn:
            return await self._q.fetchval(conn, "begin-resolving", run_id=run_id) is not None

    async def column_map(self, org_id: uuid.UUID) -> ColumnMap | None:
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "column-map", org_id=org_id)
        if row is None:
            return None
        fields = {"first_name": row["first_name_column"], **json.loads(row["merge_columns"])}
        return ColumnMap(row["member_id_column"], row["mobile_column"], row["opt_out_column"], fields,
                         state=row["state_column"], country=row["country_column"])

    async def imis_account(self, org_id: uuid.UUID) -> ImisAccount | None:
        """The organisation's iMIS login, password decrypted; SecretUnreadable if it does not decrypt."""
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "imis-account", org_id=org_id)
            if row is None:
                return None
            password = await self._secrets.open(conn, org_id, IMIS_PASSWORD, row["password"])
        return ImisAccount(row["base_url"], row["username"], password, row["query_endpoint"])

    async def excluded_numbers(
        self, org_id: uuid.UUID, sender: str, phones: Sequence[str]
    ) -> tuple[set[str], dict[str, int]]:
        """(suppressed numbers, {bad number: Twilio error code}) among ``phones``.

        Suppressed: in ``suppressions``, or an erased member's number whose digest is in
        ``erased_suppressions`` (migration 0031) with the same scope rule."""
        async with self._pool.acquire() as conn:
            suppressed = {r["phone"] for r in await self._q.fetch(conn, "suppressed-numbers", org_id=org_id,
                                                                 sender=sender, phones=phones)}
            suppressed |= await erased_suppressions.suppressed_numbers(conn, self._secrets, org_id, sender, phones)
            bad = await self._q.fetch(conn, "bad-numbers", org_id=org_id, phones=phones)
        return suppressed, {r["phone"]: r["error_code"] for r in bad}

    async def csv_upload(self, org_id: uuid.UUID, upload_id: uuid.UUID) -> tuple[str, dict[str, str]] | None:
        """(state, mapping) of an upload of this organisation, or None."""
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "csv-upload", org_id=org_id, upload_id=upload_id)
        return (row["state"], json.loads(row["mapping"])) if row is not None else None

    def csv_members(self, upload_id: uuid.UUID, batch: int) -> AsyncGenerator[list[StoredMember], None]:
        """The upload's rows in file order, ``batch`` at a time (a cursor: memory does not grow with the file)."""
        return self._batches("csv-upload-rows", batch, upload_id=upload_id)

    async def list_fields(self, org_id: uuid.UUID, list_id: uuid.UUID) -> set[str] | None:
        """The merge fields a list of this organisation fills, or None when there is no such list."""
        async with self._pool.acquire() as conn:
            if not await self._q.fetchval(conn, "list-exists", org_id=org_id, list_id=list_id):
                return None
            return {r["field"] for r in await self._q.fetch(conn, "list-fields", list_id=list_id)}

    def list_members(self, list_id: uuid.UUID, batch: int) -> AsyncGenerator[list[StoredMember], None]:
        """The list's entries in the order they were added, ``batch`` at a time."""
        return self._batches("list-entries", batch, list_id=list_id)

    async def _batches(self, name: str, batch: int, **values: Any) -> AsyncGenerator[list[StoredMember], None]:
        # A cursor needs a transaction; it only reads, and sees the rows as they were when it started.
        query = self._q[name]
        async with self._pool.acquire() as conn, conn.transaction():
            cursor = await conn.cursor(query.sql, *query.args(values))
            while rows := await cursor.fetch(batch):
                yield [StoredMember(r["member_id"], r["mobile"], json.loads(r["merge_values"])) for r in rows]

    # -- the stage and the snapshot --------------------------------------------------------------

    @asynccontextmanager
    async def stage(self) -> AsyncIterator[Stage]:
        """A connection holding an empty stage for one resolution (:mod:`services.audience.stage_db`)."""
        async with self._pool.acquire() as conn:
            stage = Stage(conn)
            await stage.open()
            try:
                yield stage
            finally:
                await stage.close()

    async def save_snapshot(self, stage: Stage, ctx: RunContext, figures: Totals, verdict: Verdict,
                            estimated_cost: Decimal | None, *, link_days: int = 180) -> bool:
        """Write the settled stage as the snapshot, index member phones and roll figures onto the run, in one
        transaction on the stage's connection.

        Returns False (and writes nothing) when the run is no longer 'resolving': another consumer got
        there first. A verdict that ends the run (nothing to send, refused, over the limit) moves the
        campaign too.
        """
        conn = stage.conn
        async with conn.transaction():
            if not verdict.publishes:
                await lock_campaign_of_run(conn, ctx.run_id)
            if await self._q.fetchval(conn, "lock-run", run_id=ctx.run_id) != "resolving":
                return False
            await stage.write_snapshot(ctx.run_id, ctx.org_id, ctx.sender, link_days=link_days)
            await self._q.execute(
                conn, "finish-resolving", run_id=ctx.run_id, state=verdict.state, **run_reasons.columns(verdict.reason),
                targeted=figures.recipients, excluded=figures.excluded, exclusions=json.dumps(figures.by_reason),
                planned_segments=figures.segments, estimated_cost=estimated_cost,
            )
            await self._audit(conn, ctx, f"run_{verdict.state}" if not verdict.publishes else "run_resolved",
                              verdict.state, {"reason": verdict.reason and verdict.reason.text,
                                              "targeted": figures.recipients,
                                              "excluded": figures.by_reason, "segments": figures.segments})
            if not verdict.publishes:
                await follow_run(conn, ctx.run_id, actor="audience")
        return True

    async def fail_run(self, ctx: RunContext, code: str, message: str, *, state: str = "failed") -> bool:
        """End a run that was not resolved, with nothing written or published, as ``failed`` (it could not
        be read) or ``refused`` (it may not be sent as it is), and move its campaign; False if it had
        already moved on."""
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_campaign_of_run(conn, ctx.run_id)
            ended = await self._q.fetchval(conn, "end-unresolved-run", run_id=ctx.run_id, state=state,
                                           **run_reasons.columns(run_reasons.failure(code, message)))
            if ended is not None:
                await self._audit(conn, ctx, f"run_{state}", state, {"code": code, "reason": message[:2000]})
                await follow_run(conn, ctx.run_id, actor="audience")
        return ended is not None

    async def _audit(self, conn: Connection, ctx: RunContext, action: str, to_state: str,
                     detail: dict[str, Any]) -> None:
        await self._q.execute(conn, "audit-run", org_id=ctx.org_id, campaign_id=ctx.campaign_id, run_id=ctx.run_id,
                              action=action, to_state=to_state, detail=json.dumps(detail))

    # -- publishing ------------------------------------------------------------------------------

    async def unpublished(self, run_id: uuid.UUID, after: int, limit: int) -> list[Unpublished]:
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "unpublished-recipients", run_id=run_id, after=after, limit=limit)
        return [Unpublished(r["position"], r["recipient_id"], r["e164"], r["body"], r["segments"], r["sender"])
                for r in rows]

    async def mark_published(self, run_id: uuid.UUID, through: int) -> None:
        """Every queued row up to position ``through`` has been acknowledged by Kafka."""
        async with self._pool.acquire() as conn:
            await self._q.execute(conn, "mark-published", run_id=run_id, position=through)
