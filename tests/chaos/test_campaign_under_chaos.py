"""Issue 12: 2,000 recipients over four senders while the platform is crashed, faulted and opted out of.

Every service runs as a real process (processes.py). During the run the suite:

- kills the audience service with -9 mid-publish (after Kafka acknowledged a batch, before its
  checkpoint) and starts it again, so a whole batch is published twice;
- three times, 5-8 seconds apart, kills a random one of the three dispatchers with -9 and starts a new
  one in its place;
- has the Twilio stand-in answer 429, 500 (with and without creating the message) and hang past the
  dispatcher's 2 s timeout on a share of creates, and send duplicate and reordered status callbacks;
- has members reply STOP, some already texted and some still waiting, through the stand-in's signed
  webhook to the real opt-out service;
- puts malformed, wrongly shaped and unhandleable events on every topic.

At the end it checks, from the stand-in's own records and the database, that every eligible member got
exactly one text, that a STOP committed before a member's turn meant no text, that no sender ever had
more than its limit in any sliding second, that ledger, runs and usage agree, that nothing is left
half-done, and that the DLQs hold exactly the poison it injected.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.dispatch import CONTROL_TIMEOUT, TwilioStandin, dispatcher_env
from harness.kafka import running_publisher
from harness.processes import free_port
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import ALL_TOPICS, CAMPAIGN_DUE
from standins.twilio.config import default_config
from tests.chaos import checks
from tests.chaos.observe import observe, unsettled
from tests.chaos.poison import campaign_due_recipes, dead_letters, dispatch_recipes, dlq_problems, inject
from tests.chaos.processes import ChaosStack, kill_audience_mid_publish
from tests.chaos.seeding import PER_SENDER, RATE, SENDERS, ChaosOrg, seed_org
from tests.chaos.stops import Stop, pick_stops, reply_stop
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(600)

# Plans fire on a deterministic share of creates (standins/trigger.py); skip spreads them over the run.
FAULTS: list[dict[str, Any]] = [
    {"kind": "callback_chaos", "duplicate_share": 0.25, "reorder_share": 0.25},
    {"kind": "rate_limited", "share": 0.02, "count": 16},
    {"kind": "server_error", "processed": True, "skip": 100, "share": 0.01, "count": 6},
    {"kind": "server_error", "processed": False, "skip": 150, "share": 0.01, "count": 4},
    {"kind": "timeout", "hang_seconds": 10, "skip": 200, "share": 0.01, "count": 4},
]
DISPATCHER_KILLS = 3


@pytest.fixture
async def chaos(tmp_path: Path, db_pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str,
                topic_prefix: str) -> AsyncIterator[tuple[ChaosStack, ChaosOrg, int]]:
    seed = random.randrange(1_000_000)  # named in a failure's message: the same seed draws the same members
    rng = random.Random(seed)
    await ensure_topics(KafkaAccess(kafka_bootstrap), ALL_TOPICS, prefix=topic_prefix)
    optout_port = free_port()
    optout_url = f"http://127.0.0.1:{optout_port}"
    org = await seed_org(db_pool, default_config(), optout_url, rng)  # the stand-in's account, as it will start
    standin = TwilioStandin(tmp_path, list(SENDERS), rate=RATE, inbound_url=f"{optout_url}/twilio/inbound")
    env = dispatcher_env(database_url, kafka_bootstrap, topic_prefix, standin)
    env |= {"TEXTPULSE_TWILIO_TIMEOUT_S": "2", "TEXTPULSE_ENV": "test"}
    stack = ChaosStack(tmp_path, env, standin)
    try:
        await stack.start(optout_port)
        yield stack, org, seed
    finally:
        stack.stop()


class Timeline:
    """What happened when, in seconds from the start of the test; written to ``timeline.log`` and shown on failure."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self.lines: list[str] = []

    def mark(self, what: str) -> None:
        wall = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        self.lines.append(f"{time.monotonic() - self._started:6.1f}s ({wall}) {what}")

    def __str__(self) -> str:
        return "\n".join(self.lines)


async def test_every_member_gets_one_text_through_crashes_faults_and_stops(
    chaos: tuple[ChaosStack, ChaosOrg, int], db_pool: asyncpg.Pool, database_url: str,
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
) -> None:
    stack, org, seed = chaos
    rng = random.Random(seed + 1)  # which dispatcher dies when, and who replies STOP
    timeline = Timeline()
    for plan in FAULTS:
        await stack.standin.fault(plan)
    stops: list[Stop] = []
    async with running_publisher(kafka_bootstrap, topic_prefix) as (publisher, producer):
        waiting, crash = list(org.campaigns), None
        while crash is None and waiting:  # the first run whose publishing can be caught half-way
            campaign = waiting.pop(0)
            await publisher.publish(CAMPAIGN_DUE, campaign.due(org.org_id), key=str(campaign.campaign_id))
            crash = await kill_audience_mid_publish(stack, database_url, db_pool, campaign.run_id)
        assert crash is not None, "every run was published before one could be caught mid-publish"
        poisons = await inject(producer, topic_prefix, campaign_due_recipes(org.org_id))
        for campaign in waiting:
            await publisher.publish(CAMPAIGN_DUE, campaign.due(org.org_id), key=str(campaign.campaign_id))
        stack.start_audience()
        timeline.mark(f"audience killed at checkpoint {crash.published_through} of {crash.last_queued}, restarted")

        killer = asyncio.create_task(_kill_dispatchers(stack, rng, timeline))
        try:  # a wait that times out is marked, and the checks below say what went wrong
            for share in (0.25, 0.6):
                await eventually(functools.partial(_sent, db_pool, org, share), timeout=120, interval=0.2)
                picks = await pick_stops(db_pool, org, rng, texted=2, waiting=2, taken={s.phone for s in stops})
                stops += await reply_stop(stack.standin, db_pool, org, picks)
                timeline.mark(f"{share:.0%} sent; {len(stops)} members have replied STOP")
                if share == 0.25:
                    poisons += await inject(producer, topic_prefix, dispatch_recipes(org.org_id, SENDERS[0]))
            await eventually(lambda: _all_completed(db_pool, org), timeout=150, interval=0.5)
            timeline.mark("all runs completed")
        except AssertionError as exc:
            timeline.mark(f"gave up waiting: {exc}")
        finally:
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
    finished = time.time()
    fired = await _fired(stack.standin)
    await stack.standin.clear_faults()

    try:
        # Deadlines for a loaded 2-core machine: the rollups were seen still catching up after 60 s.
        await eventually(lambda: _settled(db_pool, org, timeline), timeout=180, interval=0.5)
        timeline.mark("ledger, usage and webhooks settled")
        await eventually(lambda: _dead_lettered(kafka_bootstrap, topic_prefix, len(poisons)), timeout=90,
                         interval=0.5)
        timeline.mark(f"{len(poisons)} poisons dead-lettered")
    except AssertionError as exc:
        timeline.mark(f"gave up waiting: {exc}")
    observed = await observe(db_pool, stack.standin, org)
    letters = await dead_letters(kafka_bootstrap, topic_prefix)

    stop_problems, stop_kinds = checks.stop_timing(observed, stops)
    for line in checks.sender_owners(observed):
        timeline.mark(line)
    timeline.mark(f"checked: STOPs {dict(stop_kinds)}, faults fired {[(f['kind'], f.get('fired')) for f in fired]}")
    mid_run_kills = [who for at, who in stack.kills if at < finished and who.startswith("dispatcher")]
    problems = [
        *checks.exactly_once(org, observed, stops),
        *stop_problems,
        *checks.sliding_window_peaks(observed, RATE),
        *checks.agreement(org, observed),
        *checks.final_states(org, observed),
        *dlq_problems(poisons, letters),
        *[f"fault plan never fired: {plan}" for plan in fired if not plan.get("fired")],
    ]
    if len(mid_run_kills) < 2:
        problems.append(f"only {mid_run_kills} were killed while the run was sending")
    (tmp_path / "timeline.log").write_text(f"{timeline}\n")
    if problems:  # for a post-mortem: the stand-in is gone once the test ends
        (tmp_path / "problems.log").write_text("\n".join(problems) + "\n")
        (tmp_path / "arrivals.json").write_text(json.dumps(observed.arrivals))
    assert not problems, (
        f"{len(problems)} problems (seed {seed}; logs in {tmp_path}):\n- " + "\n- ".join(problems)
        + f"\ntimeline:\n{timeline}")


async def _kill_dispatchers(stack: ChaosStack, rng: random.Random, timeline: Timeline) -> None:
    for _ in range(DISPATCHER_KILLS):
        await asyncio.sleep(rng.uniform(5.0, 8.0))
        index = rng.randrange(len(stack.dispatchers))
        stack.replace_dispatcher(index)
        timeline.mark(f"dispatcher-{index} killed and restarted")


async def _settled(pool: asyncpg.Pool, org: ChaosOrg, timeline: Timeline) -> bool:
    left = await unsettled(pool, org)
    if left:
        timeline.mark(f"waiting for {left}")
    return not left


async def _sent(pool: asyncpg.Pool, org: ChaosOrg, share: float) -> bool:
    sent = await pool.fetchval("SELECT count(*) FROM send_ledger WHERE org_id = $1 AND state = 'sent'", org.org_id)
    return sent >= share * PER_SENDER * len(SENDERS)


async def _all_completed(pool: asyncpg.Pool, org: ChaosOrg) -> bool:
    return await pool.fetchval(
        "SELECT count(*) FILTER (WHERE state = 'completed') = count(*) FROM campaign_runs WHERE org_id = $1",
        org.org_id)


async def _dead_lettered(bootstrap: str, prefix: str, count: int) -> bool:
    return len({(d.topic, d.partition, d.offset) for d in await dead_letters(bootstrap, prefix)}) >= count


async def _fired(standin: TwilioStandin) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=standin.url, timeout=CONTROL_TIMEOUT) as client:
        return (await client.get("/_control/faults")).json()["faults"]
