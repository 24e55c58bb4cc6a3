"""The audience service's only SQL: named queries from queries.sql, and the snapshot's bulk COPY."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from libs.common import erased_suppressions, run_endings, run_reasons
from libs.common.audience_members import ColumnMap
from libs.common.audience_rules import SnapshotRow, Totals, Verdict
from libs.common.db import Connection, Queries
from libs.common.run_endings import follow_run, lock_campaign_of_run
from libs.common.secret_store import IMIS_PASSWORD, SecretStore

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

_SNAPSHOT_COLUMNS = (
    "run_id", "position", "recipient_id", "org_id", "member_id", "raw_phone", "e164", "region", "merge_values",
    "body", "encoding", "segments", "status", "reason", "detail", "duplicate_of", "sender",
)


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


@dataclass(frozen=True, slots=True)
class ImisAccount:
    base_url: str | None
    username: str
    password: str = field(repr=False)


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
        return ColumnMap(row["member_id_column"], row["mobile_column"], row["opt_out_column"], fields)

    async def imis_account(self, org_id: uuid.UUID) -> ImisAccount | None:
        """The organisation's iMIS login, password decrypted; SecretUnreadable if it does not decrypt."""
        async with self._pool.acquire() as conn:
            row = await self._q.fetchrow(conn, "imis-account", org_id=org_id)
            if row is None:
                return None
            password = await self._secrets.open(conn, org_id, IMIS_PASSWORD, row["password"])
        return ImisAccount(row["base_url"], row["username"], password)

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

    async def csv_members(self, upload_id: uuid.UUID) -> list[StoredMember]:
        async with self._pool.acquire() as conn:
            rows = await self._q.fetch(conn, "csv-upload-rows", upload_id=upload_id)
        return [StoredMember(r["member_id"], r["mobile"], json.loads(r["merge_values"])) for r in rows]

    async def list_members(self, org_id: uuid.UUID, list_id: uuid.UUID) -> tuple[list[StoredMember], set[str]] | None:
        """(entries, merge fields they fill) of a list of this organisation, or None."""
        async with self._pool.acquire() as conn:
            if not await self._q.fetchval(conn, "list-exists", org_id=org_id, list_id=list_id):
                return None
            rows = await self._q.fetch(conn, "list-entries", list_id=list_id)
            fields = {r["field"] for r in await self._q.fetch(conn, "list-fields", list_id=list_id)}
        return [StoredMember(r["member_id"], r["mobile"], json.loads(r["merge_values"])) for r in rows], fields

    # -- writing the snapshot --------------------------------------------------------------------

    async def save_snapshot(
        self, ctx: RunContext, rows: Sequence[SnapshotRow], figures: Totals, verdict: Verdict,
        estimated_cost: Decimal | None,
    ) -> bool:
        """Write the snapshot, index member phones and roll figures onto the run, in one transaction.

        Returns False (and writes nothing) when the run is no longer 'resolving': another consumer got
        there first. Rows go in with COPY: 100,000 of them in about a second, not 100,000 round trips.
        A verdict that ends the run (nothing to send, refused, over the limit) moves the campaign too.
        """
        records = (  # a generator: COPY streams it, so 100,000 row tuples never exist at once
            (ctx.run_id, r.position, uuid.uuid4(), ctx.org_id, r.member_id, r.raw_phone, r.e164, r.region,
             None if r.merge_values is None else json.dumps(r.merge_values, ensure_ascii=False),
             r.body, r.encoding, r.segments, r.status, r.reason, r.detail, r.duplicate_of,
             ctx.sender if r.status == "queued" else None)
            for r in rows
        )
        pairs = sorted({(r.e164, r.member_id) for r in rows if r.e164 and 0 < len(r.member_id) <= 64})
        async with self._pool.acquire() as conn, conn.transaction():
            if not verdict.publishes:
                await lock_campaign_of_run(conn, ctx.run_id)
            if await self._q.fetchval(conn, "lock-run", run_id=ctx.run_id) != "resolving":
                return False
            await conn.copy_records_to_table("run_recipients", records=records, columns=_SNAPSHOT_COLUMNS)
            if pairs:
                await self._q.execute(conn, "index-member-phones", org_id=ctx.org_id, run_id=ctx.run_id,
                                      phones=[p for p, _ in pairs], member_ids=[m for _, m in pairs])
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

    async def fail_run(self, ctx: RunContext, code: str, message: str) -> bool:
        """Mark a run that could not be resolved as failed, and move its campaign; False if it had already
        moved on."""
        async with self._pool.acquire() as conn, conn.transaction():
            await lock_campaign_of_run(conn, ctx.run_id)
            failed = await self._q.fetchval(conn, "fail-run", run_id=ctx.run_id,
                                            **run_reasons.columns(run_reasons.failure(code, message)))
            if failed is not None:
                await self._audit(conn, ctx, "run_failed", "failed", {"code": code, "reason": message[:2000]})
                await follow_run(conn, ctx.run_id, actor="audience")
        return failed is not None

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
