"""A run's audience staged while it is read, so memory does not grow with the audience.

    async with store.stage() as stage:
        async for members in source:                  # IQA pages, CSV or list rows, a batch at a time
            await stage.add(rules.classify_each(members, ..., start=stage.members))
        figures, cost_groups = await stage.settle()   # rules 1 and 8 across every batch, then the totals
        saved = await store.save_snapshot(stage, ctx, figures, verdict, cost)

Each batch is classified on its own (rules 2-7 of :mod:`libs.common.audience_rules`) and copied into a
temporary table on one connection held for the whole resolution (stage.sql says why a temporary
table). :meth:`Stage.settle` then applies the rules that need the whole audience, a repeated member id
and a shared number, as set-based statements in PostgreSQL, and adds up the figures;
:meth:`Stage.write_snapshot` turns the stage into the snapshot inside the one transaction that ends
'resolving' (``AudienceStore.save_snapshot``), as before.

The stage is dropped when the block ends; if the connection breaks first, PostgreSQL drops it with the
session. PostgreSQL errors propagate unchanged (the handler makes them retryable).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from libs.common.audience_rules import SnapshotRow, Totals
from libs.common.db import Connection, Queries
from libs.common.send_checks import NANP_PREFIX

QUERIES: Final = Queries.load(Path(__file__).with_name("stage.sql"))

_COLUMNS: Final = ("position", "member_id", "raw_phone", "e164", "region", "merge_values", "body", "encoding",
                   "segments", "reason", "detail", "duplicate_of", "links", "address_state")
# Statements over the whole stage of a 1,000,000-member audience take longer than the pool's 30 s
# command timeout on a busy machine; the consumer's own deadline (max_retry_s) still bounds the run.
SET_BASED_TIMEOUT_S: Final = 600.0

CostGroups = list[tuple[str, int, int]]  # (region, segments, recipients) of the queued rows


class Stage:
    """The stage of one resolution, on the connection that holds it. Not safe for concurrent use."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.members = 0
        self._copying: asyncio.Future[str] | None = None

    async def open(self) -> None:
        await self._run("drop-stage")  # one a failed drop may have left on this pooled connection
        await self._run("create-stage")

    async def close(self) -> None:
        """Drop the stage (unless the connection is gone, and the stage with it); a copy still in flight
        (the resolution failed) is cancelled first."""
        if self._copying is not None:
            self._copying.cancel()
            await asyncio.gather(self._copying, return_exceptions=True)
            self._copying = None
        if not self.conn.is_closed():
            await self._run("drop-stage")

    async def add(self, rows: Sequence[SnapshotRow]) -> None:
        """Hand one classified batch over to be copied in; positions must continue from :attr:`members`.

        The copy runs while the caller reads and classifies the next batch (PostgreSQL's work on one batch
        beside this process's on the next): ``add`` returns once the previous batch's copy has finished and
        this one's has started, so one batch at most is in flight. A failed copy raises from the next
        ``add`` or from :meth:`settle`."""
        await self._copied()
        records = [
            (r.position, r.member_id, r.raw_phone, r.e164, r.region,
             None if r.merge_values is None else orjson.dumps(r.merge_values).decode(),
             r.body, r.encoding, r.segments, r.reason, r.detail, r.duplicate_of,
             orjson.dumps([{"code": link.code, "url": link.url} for link in r.links]).decode() if r.links else None,
             r.address_state)
            for r in rows
        ]
        self.members += len(rows)
        self._copying = asyncio.ensure_future(self.conn.copy_records_to_table(
            "audience_stage", records=records, columns=_COLUMNS, timeout=SET_BASED_TIMEOUT_S))

    async def _copied(self) -> None:
        copying, self._copying = self._copying, None
        if copying is not None:
            await copying

    async def settle(self) -> tuple[Totals, CostGroups]:
        """Apply rules 1 and 8 to the whole stage; return its figures and the queued rows' cost groups."""
        await self._copied()
        await self._run("analyze-stage")
        await self._run("mark-repeated-members")
        await self._run("attribute-households")
        groups = await self._fetch("stage-totals", nanp_prefix=NANP_PREFIX)
        queued = next((g for g in groups if g["reason"] is None), None)
        by_reason = {g["reason"]: g["members"] for g in groups if g["reason"] is not None}
        figures = Totals(
            recipients=queued["members"] if queued else 0,
            excluded=sum(by_reason.values()),
            segments=queued["segments"] if queued else 0,
            by_reason=dict(sorted(by_reason.items())),
            nanp_recipients=queued["nanp"] if queued else 0,
        )
        cost = [(r["region"], r["segments"], r["recipients"]) for r in await self._fetch("stage-cost-groups")]
        return figures, cost

    async def write_snapshot(self, run_id: uuid.UUID, org_id: uuid.UUID, sender: str | None, *,
                             link_days: int = 180) -> None:
        """The settled stage into run_recipients, short_links (valid ``link_days``) and member_phone_index;
        in the caller's transaction on :attr:`conn` (:meth:`services.audience.db.AudienceStore.save_snapshot`)."""
        await self._run("write-snapshot", run_id=run_id, org_id=org_id, sender=sender)
        await self._run("insert-staged-links", run_id=run_id, org_id=org_id, link_days=link_days)
        await self._run("index-staged-member-phones", run_id=run_id, org_id=org_id)

    async def _run(self, name: str, **values: Any) -> None:
        query = QUERIES[name]
        await self.conn.execute(query.sql, *query.args(values), timeout=SET_BASED_TIMEOUT_S)

    async def _fetch(self, name: str, **values: Any) -> list[Any]:
        query = QUERIES[name]
        return await self.conn.fetch(query.sql, *query.args(values), timeout=SET_BASED_TIMEOUT_S)


def cost_inputs(groups: CostGroups) -> Iterable[tuple[str, int]]:
    """The ``(region, segments)`` of every queued recipient, as :meth:`PriceTable.estimate` takes them."""
    for region, segments, recipients in groups:
        for _ in range(recipients):
            yield region, segments
