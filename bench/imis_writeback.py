"""iMIS write-back lanes: many organisations' TEXTUNSUB activities while one organisation's iMIS is slow.

    .venv/bin/python -m bench.imis_writeback [--orgs 20] [--jobs 25] [--slow-delay 1.0]

Needs the local PostgreSQL (``python -m deploy.stack infra``); makes its own database (dropped at the end).
Two iMIS stand-ins run in this process: a quick one for ``--orgs`` organisations with ``--jobs`` opt-outs
each (distinct members), and a slow one (every call waits ``--slow-delay`` s) for one more organisation
with the same number of jobs. The write-back worker (services/optout/writeback.py) drains them all.

Printed: how long the quick organisations took and how many of the slow one's jobs were done by then (its
lane goes one call at a time, never holding the others up), jobs/s, this process's CPU-seconds per job
(the worker and both stand-ins share the process, so this is an upper bound for the worker alone) and the
load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg
import httpx

from bench.report import result
from harness import factories
from harness.credentials import TEST_SECRETS
from harness.databases import create_database, drop_database
from libs.common.db import apply_migrations
from services.optout.db import OptoutDb
from services.optout.writeback import WritebackTuning, WritebackWorker
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.serving import ServerThread


async def _seed(pool: asyncpg.Pool, base_url: str, members: list[str]) -> uuid.UUID:
    org_id = await factories.make_org(pool)
    await factories.make_imis_account(pool, org_id, base_url=base_url, writeback_target="activity")
    rows = [(org_id, m, f"+1415{i:07d}", "opt_out", "STOP") for i, m in enumerate(members)]
    await pool.executemany("INSERT INTO imis_outbox (org_id, member_id, phone, action, source_text, occurred_at) "
                           "VALUES ($1, $2, $3, $4, $5, now())", rows)
    return org_id


async def _count(pool: asyncpg.Pool, orgs: list[uuid.UUID], state: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM imis_outbox WHERE org_id = ANY($1) AND state = $2",
                                   orgs, state))


async def main(orgs: int, jobs: int, slow_delay: float) -> None:
    name = f"textpulse_bench_imis_{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    config = ImisConfig(dataset=str((orgs + 1) * jobs), preexisting_opt_out_every=0)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=2, max_size=8)
        quick_app, slow_app = create_app(config), create_app(config)
        ids = [m.id for m in quick_app.state.imis.members]
        with ServerThread(quick_app) as quick, ServerThread(slow_app) as slow:
            async with httpx.AsyncClient(base_url=slow.url) as control:
                await control.post("/_control/faults", json={"kind": "slow", "path": "/api/", "share": 1.0,
                                                              "delay_seconds": slow_delay})
            quick_orgs = [await _seed(pool, quick.url, ids[i * jobs:(i + 1) * jobs]) for i in range(orgs)]
            slow_org = await _seed(pool, slow.url, ids[orgs * jobs:(orgs + 1) * jobs])
            async with httpx.AsyncClient(timeout=60) as http:
                worker = WritebackWorker(pool, OptoutDb.load(TEST_SECRETS), http, default_base_url=quick.url,
                                         wake=asyncio.Event(), tuning=WritebackTuning(poll_s=0.05))
                cpu, wall = time.process_time(), time.perf_counter()
                running = asyncio.create_task(worker.run())
                total = orgs * jobs
                while await _count(pool, quick_orgs, "done") < total:
                    if await _count(pool, quick_orgs, "failed"):
                        raise SystemExit("a write-back failed: see the log above")
                    await asyncio.sleep(0.05)
                quick_s, quick_cpu = time.perf_counter() - wall, time.process_time() - cpu
                slow_done = await _count(pool, [slow_org], "done")
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
        await pool.close()
    finally:
        await drop_database(name)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    result(f"{orgs} organisations x {jobs} TEXTUNSUB write-backs, one slow iMIS beside them", "-",
           f"{quick_s:.2f} s wall, {total / quick_s:,.0f} jobs/s")
    result("CPU-seconds per write-back job (worker and both stand-ins)", "-",
           f"{quick_cpu / total * 1000:.2f} ms ({quick_cpu:.2f} CPU-s for {total} jobs)")
    result(f"slow organisation's jobs done meanwhile ({slow_delay} s per iMIS call)", "-",
           f"{slow_done} of {jobs}")
    result("load average (1, 5, 15 min)", "-", load)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.imis_writeback")
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=25)
    parser.add_argument("--slow-delay", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.orgs, args.jobs, args.slow_delay))
