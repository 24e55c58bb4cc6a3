"""Issue 21: a campaign rides out a restart of PostgreSQL or Kafka, and no service process dies of it.

The whole platform runs as real processes (scheduler, audience, three dispatchers, opt-out, usage, API,
the Twilio stand-in; the iMIS stand-in in this process) on a PostgreSQL and a broker of the suite's own
(infra.py), since these tests stop them. The stack is started once for the module; each test seeds its
own organisation, on senders of its own, whose runs the scheduler publishes. Mid-campaign, one test each:

- stops PostgreSQL with ``pg_ctl stop -m fast`` (a clean shutdown) and starts it again;
- stops it with ``-m immediate`` (a crash: the restart recovers from the WAL);
- kills the broker with -9 and starts it again.

The dependency stays down until every service's ``/readyz`` names it as failing: 503, except the opt-out
service's 200 ``degraded`` (it still makes webhooks durable in the other one). Members reply STOP
right before the outage, during it (the opt-out service keeps the webhook in Kafka while PostgreSQL is
away, or in PostgreSQL while the broker is) and right after it. The checks are the chaos suite's
(checks.py), and: every process still runs, with no crashed worker in its log; every STOP reached iMIS.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from harness.credentials import seal_credentials
from harness.dispatch import CONTROL_TIMEOUT, TwilioStandin, dispatcher_env
from harness.processes import free_port
from libs.common.db import create_pool
from libs.common.kafka import ensure_topics
from libs.common.kafka_security import KafkaAccess
from libs.common.outages import is_outage
from libs.common.topics import ALL_TOPICS
from standins.imis.app import create_app
from standins.imis.config import ImisConfig, load_members
from standins.serving import ServerThread
from standins.twilio.config import default_config
from tests.chaos import checks
from tests.chaos.infra import PrivateInfra
from tests.chaos.observe import observe, unsettled
from tests.chaos.processes import ChaosStack
from tests.chaos.seeding import ChaosCampaign, ChaosOrg, Member, seed_org
from tests.chaos.stops import Stop, pick_stops, reply_stop
from tests.conftest import eventually

pytestmark = pytest.mark.timeout(420)  # the first test also starts the private infrastructure and the stack

OUTAGES = ("postgres_fast", "postgres_immediate", "kafka_kill")
SENDERS = {outage: (f"+1888555016{2 * i}", f"+1888555016{2 * i + 1}") for i, outage in enumerate(OUTAGES)}
PER_SENDER = 150
RATE = 15  # segments per second per sender: a run lasts about 15 s, so an outage falls in its middle
MIN_OUTAGE_S = 5.0
# Each test's organisation takes the stand-in's one Twilio account over from the last one's; the opt-out
# service trusts an account's organisation from memory for 5 s (OptoutTuning.account_cache_s), and a
# callback it tags with the old organisation is refused (account_not_of_org). The runs start after that.
ACCOUNT_MOVED_S = 8.0
PANEL = "TP_SmsPreferences"


class Timeline:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self.lines: list[str] = []
        self._last = ""

    def mark(self, what: str, *, if_changed: bool = False) -> None:
        if if_changed and what == self._last:
            return
        self._last = what
        self.lines.append(f"{time.monotonic() - self._started:6.1f}s ({time.strftime('%H:%M:%S')}) {what}")

    def __str__(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
async def infra() -> AsyncIterator[PrivateInfra]:
    own = PrivateInfra()
    await own.start()
    try:
        yield own
    finally:
        await own.stop()


@pytest.fixture(scope="module")
async def chaos_db(infra: PrivateInfra) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    url = await infra.postgres.create_database()
    pool = await create_pool(url, min_size=1, max_size=10)
    try:
        yield url, pool
    finally:
        await pool.close()
        await infra.postgres.drop_database(url)


@pytest.fixture(scope="module")
def imis() -> Iterator[tuple[ServerThread, list[str]]]:
    """The iMIS stand-in, with a contact for every member the tests seed (their ids, in order)."""
    config = ImisConfig(dataset=str(len(OUTAGES) * 2 * PER_SENDER), preexisting_opt_out_every=0)
    ids = [m.id for m in load_members(config.dataset, config.seed)]
    with ServerThread(create_app(config)) as server:
        yield server, ids


@pytest.fixture(scope="module")
async def stack(infra: PrivateInfra, chaos_db: tuple[str, asyncpg.Pool], imis: tuple[ServerThread, list[str]],
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosStack]:
    log_dir = tmp_path_factory.mktemp("restarts")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(KafkaAccess(infra.bootstrap), ALL_TOPICS, prefix=prefix)
    optout_port = free_port()
    senders = [s for pair in SENDERS.values() for s in pair]
    # Status callbacks refused during an outage are tried again for about a minute (Twilio's own retries
    # are not documented: docs/twilio.md#status-callbacks); a lost one is not what these tests are about.
    standin = TwilioStandin(log_dir, senders, rate=RATE, inbound_url=f"http://127.0.0.1:{optout_port}/twilio/inbound",
                            extra_config={"callback_attempts": 7, "callback_backoff": 1.0})
    env = dispatcher_env(chaos_db[0], infra.bootstrap, prefix, standin)
    env |= {"TEXTPULSE_ENV": "test", "TEXTPULSE_IMIS_BASE_URL": imis[0].url}
    running = ChaosStack(log_dir, env, standin)
    try:
        await running.start(optout_port, whole=True)
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("outage", OUTAGES)
async def test_a_campaign_rides_out_a_dependency_restart(
    outage: str, stack: ChaosStack, infra: PrivateInfra, chaos_db: tuple[str, asyncpg.Pool],
    imis: tuple[ServerThread, list[str]], tmp_path: Path,
) -> None:
    pool = chaos_db[1]
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    index = OUTAGES.index(outage)
    member_ids = imis[1][index * 2 * PER_SENDER:(index + 1) * 2 * PER_SENDER]
    optout_url = stack.optout.url if stack.optout else ""
    org = await seed_org(pool, default_config(), optout_url, rng, senders=SENDERS[outage], per_sender=PER_SENDER,
                         rate=RATE, member_ids=member_ids, start_in_s=ACCOUNT_MOVED_S)
    async with pool.acquire() as conn:
        # The chaos checks read each STOP back from the member's TP_SmsPreferences panel.
        await conn.execute("INSERT INTO imis_accounts (org_id, username, password, writeback_target) "
                           "VALUES ($1, 'SMS_INTEGRATION', 'standin-password', 'panel')", org.org_id)
        await seal_credentials(conn)
    timeline = Timeline()
    stops: list[Stop] = []
    failing = "kafka" if outage == "kafka_kill" else "postgres"

    async def pick() -> list[tuple[ChaosCampaign, Member]]:
        return await pick_stops(pool, org, rng, texted=1, waiting=1, taken={s.phone for s in stops} | chosen)

    async def reply(picks: list[tuple[ChaosCampaign, Member]], when: str) -> None:
        timeline.mark(f"{len(picks)} members reply STOP {when}")
        stops.extend(await reply_stop(stack.standin, pool, org, picks, timeout=120))

    chosen: set[str] = set()
    try:
        await eventually(_quietly(lambda: _sent(pool, org, 0.25)), timeout=180, interval=0.2)
        timeline.mark("25% sent")
        await reply(await pick(), "right before the outage")
        during = await pick()  # chosen now: while PostgreSQL is down, the ledger cannot be read
        chosen = {m.phone for _, m in during}
        started = time.monotonic()
        if failing == "postgres":
            await infra.stop_postgres("fast" if outage == "postgres_fast" else "immediate")
        else:
            await infra.kill_kafka()
        timeline.mark(f"{outage}: down")
        replying = None
        try:
            answers = await _not_ready(stack, failing)
            timeline.mark(f"every /readyz named {failing} as failing: {answers}")
            # Their suppressions are seen once PostgreSQL is back (the webhooks wait in Kafka meanwhile).
            replying = asyncio.create_task(reply(during, "during the outage"))
            await asyncio.sleep(max(0.0, MIN_OUTAGE_S - (time.monotonic() - started)))
        finally:  # back up whatever happened, or the next tests find it down
            if failing == "postgres":
                await infra.start_postgres()
            else:
                await infra.start_kafka()
            timeline.mark(f"{outage}: back after {time.monotonic() - started:.1f} s")
            if replying is not None:
                await replying
        await stack.ready(timeout=180)
        timeline.mark("every service ready again")
        await reply(await pick(), "right after the outage")
        await eventually(_quietly(lambda: _all_completed(pool, org)), timeout=180, interval=0.5)
        timeline.mark("all runs completed")
        await eventually(_quietly(lambda: _settled(pool, org, stops, timeline)), timeout=90, interval=0.5)
        timeline.mark("ledger, usage, webhooks and iMIS write-backs settled")
    except AssertionError as exc:  # a wait that timed out: the checks below say what went wrong
        timeline.mark(f"gave up waiting: {exc}")

    observed = await observe(pool, stack.standin, org)
    jobs, panels = await _writebacks(pool, imis[0].url, org, stops)
    stop_problems, stop_kinds = checks.stop_timing(observed, stops)
    timeline.mark(f"checked: STOPs {dict(stop_kinds)}")
    problems = [
        *checks.survivors(stack.services()),
        *checks.exactly_once(org, observed, stops),
        *stop_problems,
        *checks.written_back(org, stops, jobs, panels),
        *checks.sliding_window_peaks(observed, RATE),
        *checks.agreement(org, observed),
        *checks.final_states(org, observed),
    ]
    (tmp_path / "timeline.log").write_text(f"{timeline}\n")
    if problems:
        webhooks = await pool.fetch(
            "SELECT id, state, outcome, error, received_at, params->>'From' AS sender FROM webhook_requests"
            " WHERE org_id = $1 AND kind = 'inbound' ORDER BY id", org.org_id)
        problems.append(f"inbound webhooks stored: {[dict(r) for r in webhooks]}")
        (tmp_path / "problems.log").write_text("\n".join(problems) + "\n")
        (tmp_path / "arrivals.json").write_text(json.dumps(observed.arrivals))
    assert not problems, (
        f"{len(problems)} problems (seed {seed}; service logs in {stack.log_dir}):\n- " + "\n- ".join(problems)
        + f"\ntimeline:\n{timeline}")


def _quietly(probe: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """The probe, answering False while the test's own connection to PostgreSQL is being re-established."""

    async def probing() -> bool:
        try:
            return await probe()
        except Exception as exc:
            if not is_outage(exc):
                raise
            return False

    return probing


# While one of its two dependencies is down, the opt-out service can still make a webhook durable in the other.
_DEGRADED_WHEN_ONE_IS_DOWN = frozenset({"optout"})


def _names_outage(process: str, failing: str, status: int, body: dict[str, Any]) -> bool:
    """Whether a /readyz answer says ``failing`` is down, as the process's readiness rule says it should."""
    if not body.get("checks", {}).get(failing, "").startswith("failed"):
        return False
    if process in _DEGRADED_WHEN_ONE_IS_DOWN:
        return status == 200 and body.get("status") == "degraded" and body.get("failing") == [failing]
    return status == 503 and body.get("status") == "not_ready"


async def _not_ready(stack: ChaosStack, failing: str, timeout: float = 120) -> dict[str, str]:
    """Wait until every service's /readyz names ``failing`` as a failed check (503, or 200 ``degraded`` for the
    opt-out service); return the answers."""
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=CONTROL_TIMEOUT) as client:
        while True:
            for process in stack.services():
                if process.name in answers:
                    continue
                try:
                    response = await client.get(f"{process.url}/readyz")
                except httpx.HTTPError:
                    continue
                body = response.json()
                if _names_outage(process.name, failing, response.status_code, body):
                    answers[process.name] = f"{response.status_code} {body['checks'][failing]}"
            if len(answers) == len(stack.services()):
                return answers
            if time.monotonic() > deadline:
                missing = sorted({p.name for p in stack.services()} - set(answers))
                raise AssertionError(f"/readyz did not name {failing} as failing within {timeout} s: {missing}")
            await asyncio.sleep(0.2)


async def _sent(pool: asyncpg.Pool, org: ChaosOrg, share: float) -> bool:
    sent = await pool.fetchval("SELECT count(*) FROM send_ledger WHERE org_id = $1 AND state = 'sent'", org.org_id)
    return bool(sent >= share * PER_SENDER * len(org.campaigns))


async def _all_completed(pool: asyncpg.Pool, org: ChaosOrg) -> bool:
    return bool(await pool.fetchval(
        "SELECT count(*) FILTER (WHERE state = 'completed') = count(*) FROM campaign_runs WHERE org_id = $1",
        org.org_id))


async def _settled(pool: asyncpg.Pool, org: ChaosOrg, stops: list[Stop], timeline: Timeline) -> bool:
    left = await unsettled(pool, org)
    writebacks = await pool.fetchval(
        "SELECT count(*) FROM imis_outbox WHERE org_id = $1 AND state = 'pending'", org.org_id)
    if writebacks:
        left["iMIS write-backs pending"] = (writebacks, 0)
    if left:
        timeline.mark(f"waiting for {left}", if_changed=True)
    return not left


async def _writebacks(pool: asyncpg.Pool, imis_url: str, org: ChaosOrg,
                      stops: list[Stop]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The organisation's iMIS jobs, and the panel row of each member who replied STOP, as iMIS has it."""
    jobs = [dict(r) for r in await pool.fetch(
        "SELECT member_id, action, state, attempts, last_error FROM imis_outbox WHERE org_id = $1", org.org_id)]
    member_of = {m.phone: m.member_id for c in org.campaigns for m in c.members}
    panels = {}
    async with httpx.AsyncClient(base_url=f"{imis_url}/_control", timeout=CONTROL_TIMEOUT) as client:
        for stop in stops:
            member = member_of[stop.phone]
            response = await client.get(f"/panels/{PANEL}/{member}")
            if response.status_code == 200:
                panels[member] = response.json()
    return jobs, panels
