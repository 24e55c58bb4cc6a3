"""For dispatcher tests and benchmarks: the Twilio stand-in, dispatchers, and a seeded organisation and run."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from harness import factories
from harness.kafka import as_access
from harness.processes import Process, free_port
from libs.common.events import Recipient
from libs.common.kafka import EventPublisher
from libs.common.kafka_security import KafkaAccess
from libs.common.segments import count_segments
from libs.common.topics import RECIPIENTS
from standins.twilio.config import default_config

# The stand-ins' control calls and readiness probes on a busy machine: a loaded 2-core host has been seen
# to take seconds to answer one, so only a wait far past that is taken to mean "broken".
CONTROL_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class TwilioStandin:
    def __init__(self, log_dir: Path, senders: list[str], *, rate: float = 3.0, inbound_url: str | None = None,
                 status_callbacks: bool = True, extra_config: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = default_config()
        config_file = log_dir / "twilio.json"
        numbers = [{"phone_number": s} for s in senders]
        config_file.write_text(json.dumps({"numbers": numbers, "delivery_delay": 0.05, "default_rate": rate,
                                           "callback_attempts": 1, "inbound_url": inbound_url,
                                           "status_callbacks": status_callbacks, **(extra_config or {})}))
        self.process = Process("twilio-standin", [sys.executable, "-m", "standins.twilio", "--port", str(self.port),
                                                  "--config", str(config_file)], dict(os.environ), log_dir)

    async def messages_to(self) -> dict[str, list[dict[str, Any]]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            data = (await client.get("/_control/messages", params={"direction": "outbound-api"})).json()
        by_number: dict[str, list[dict[str, Any]]] = {}
        for message in data["messages"]:
            by_number.setdefault(message["to"], []).append(message)
        return by_number

    async def summary(self) -> dict[str, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            senders: dict[str, dict[str, Any]] = (await client.get("/_control/arrivals/summary")).json()["senders"]
            return senders

    async def arrivals(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            arrivals: list[dict[str, Any]] = (await client.get("/_control/arrivals")).json()["arrivals"]
            return arrivals

    async def reply(self, member: str, sender: str, body: str) -> dict[str, Any]:
        """The member texts ``body`` to ``sender``: Twilio's keyword rules, then the signed webhook; returns
        what the stand-in did (``webhook``: the HTTP status or error the webhook got)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            reply = {"from": member, "to": sender, "body": body}
            response = await client.post("/_control/replies", json=reply)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

    async def fault(self, plan: dict[str, Any]) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            (await client.post("/_control/faults", json=plan)).raise_for_status()

    async def clear_faults(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=CONTROL_TIMEOUT) as client:
            await client.delete("/_control/faults")
            await client.post("/_control/faults/release")


class ControlledClock:
    """The time a dispatcher believes it is (``TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE``), for quiet hours."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, at: datetime) -> None:
        self.path.write_text(str(at.timestamp() - time.time()), encoding="utf-8")


@dataclass
class SeededRun:
    org_id: uuid.UUID
    campaign_id: uuid.UUID
    run_id: uuid.UUID
    senders: list[str]
    recipients: list[Recipient] = field(default_factory=list)


async def seed_run(pool: asyncpg.Pool, standin: TwilioStandin, senders: list[str], count: int, *,
                   rng: random.Random, numbers: list[str] | None = None) -> SeededRun:
    """A sending run of ``count`` recipients across ``senders``, to ``numbers`` (default: US numbers)."""
    cfg = standin.config
    async with pool.acquire() as conn:
        org_id = await factories.make_org(conn, name="Dispatch test")
        await factories.make_standin_account(conn, org_id, cfg)
        for address in senders:
            await factories.make_sender(conn, org_id, address)
        campaign_id = await factories.make_campaign(conn, org_id, name="Test", body="x", state="sending")
        run_id = await factories.make_run(conn, org_id, campaign_id, state="sending", targeted=count)
    run = SeededRun(org_id, campaign_id, run_id, senders)
    bodies = {1: "Hi {n}, the AGM is on Friday.", 2: "Hi {n}, " + "the AGM is on Friday. " * 8,
              3: "Hi {n}, " + "the AGM is on Friday at the hall. " * 10}
    for index in range(count):
        body = bodies[rng.choice([1, 1, 1, 2, 3])].format(n=index)
        run.recipients.append(Recipient(
            org_id=org_id, campaign_id=campaign_id, run_id=run_id, recipient_id=uuid.uuid4(),
            sender=senders[index % len(senders)], to=numbers[index] if numbers else f"+1415555{index:04d}",
            body=body, segments=count_segments(body).segments))
    await store_snapshot(pool, run.recipients)
    return run


async def store_snapshot(pool: asyncpg.Pool, recipients: list[Recipient]) -> None:
    """Write ``recipients`` as their runs' frozen snapshot, as the audience service would: the dispatcher
    sends only what the snapshot holds."""
    async with pool.acquire() as conn:
        first = await conn.fetchval("SELECT coalesce(max(position), -1) + 1 FROM run_recipients WHERE run_id = ANY($1)",
                                    list({r.run_id for r in recipients}))
        await conn.copy_records_to_table(
            "run_recipients",
            columns=("run_id", "position", "recipient_id", "org_id", "member_id", "e164", "body", "segments",
                     "status", "sender"),
            records=[(r.run_id, first + i, r.recipient_id, r.org_id, str(i), r.to, r.body, r.segments, "queued",
                      r.sender) for i, r in enumerate(recipients)])


async def snapshot_texts(pool: asyncpg.Pool, run: SeededRun, numbers: list[str], body: str) -> None:
    """The run's recipients, one one-segment text of ``body`` to each number from the run's first sender,
    stored as its snapshot."""
    run.recipients = [Recipient(org_id=run.org_id, campaign_id=run.campaign_id, run_id=run.run_id,
                                recipient_id=uuid.uuid4(), sender=run.senders[0], to=number, body=body, segments=1)
                      for number in numbers]
    await store_snapshot(pool, run.recipients)


async def publish_recipients(publisher: EventPublisher, run: SeededRun) -> None:
    """Publish every recipient, many in flight at once (one by one waiting for each ack is ~150/s)."""
    batch = 500
    for start in range(0, len(run.recipients), batch):
        await asyncio.gather(*(publisher.publish(RECIPIENTS, r, key=r.sender)
                               for r in run.recipients[start:start + batch]))


def dispatcher_env(database_url: str, kafka: KafkaAccess | str, prefix: str, standin: TwilioStandin) -> dict[str, str]:
    """A dispatcher's environment; ``kafka`` is how it connects (on an authenticating broker: as the dispatcher)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTPULSE_KAFKA_")}
    return dict(env, TEXTPULSE_DATABASE_URL=database_url, **as_access(kafka).env(),
                TEXTPULSE_TOPIC_PREFIX=prefix, TEXTPULSE_TWILIO_API_BASE_URL=standin.url,
                TEXTPULSE_KAFKA_SESSION_TIMEOUT_MS="6000", TEXTPULSE_LOG_FORMAT="text")


# Every US window is open from 19:00 to 24:00 UTC on every day of the year: Hawaii's 8 am is 18:00 UTC, a Texas
# Sunday's noon in El Paso 19:00 (winter), Florida's 8 pm Eastern 00:00 (summer). A session that starts before
# 22:00 UTC keeps the real time (two hours of band left: a slow suite's length); any other is moved on to 19:00
# UTC, so a dispatcher believing it is in the band texts whoever a test seeds, whenever the suite runs.
DAYTIME_BAND_UTC = (19, 24)
LATEST_START_UTC = 22


def daytime_clock_offset(now: datetime) -> float:
    """Seconds to move ``now`` into the daytime band with two hours of it left: 0 from 19:00 to 22:00 UTC, else
    on to the next 19:00 UTC (ahead, so a run's hold limit, counted from its real start, is never passed)."""
    utc = now.astimezone(UTC)
    if DAYTIME_BAND_UTC[0] <= utc.hour < LATEST_START_UTC:
        return 0.0
    target = utc.replace(hour=DAYTIME_BAND_UTC[0], minute=0, second=0, microsecond=0)
    if target < utc:
        target += timedelta(days=1)
    return (target - utc).total_seconds()


@cache
def daytime_clock_file() -> Path:
    """The clock offset file every dispatcher of this test session shares (one offset, so their pacing
    anchors agree): see :func:`daytime_clock_offset`."""
    path = Path(tempfile.mkdtemp(prefix="textpulse-clock-")) / "daytime-offset"
    path.write_text(str(daytime_clock_offset(datetime.now(UTC))), encoding="utf-8")
    return path


def start_dispatcher(name: str, env: dict[str, str], log_dir: Path) -> Process:
    """A dispatcher process; in daytime (:func:`daytime_clock_file`) unless ``env`` gives a clock of its own."""
    port = free_port()
    env = {"TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE": str(daytime_clock_file()), **env, "TEXTPULSE_HTTP_PORT": str(port)}
    process = Process(name, [sys.executable, "-m", "services.dispatcher"], env, log_dir)
    process.url = f"http://127.0.0.1:{port}"
    return process


def longest_pauses(arrivals: list[dict[str, Any]], *, until: float | None = None) -> dict[str, tuple[float, float]]:
    """Per sender: the longest time between two of its messages arriving at the stand-in (before ``until``),
    and when it began."""
    by_sender: dict[str, list[float]] = {}
    for arrival in arrivals:
        if until is None or arrival["accepted_at"] < until:
            by_sender.setdefault(arrival["sender"], []).append(arrival["accepted_at"])
    pauses = {}
    for sender, times in by_sender.items():
        times.sort()
        gaps = [(later - earlier, earlier) for earlier, later in zip(times, times[1:], strict=False)]
        pauses[sender] = max(gaps, default=(0.0, times[0]))
    return pauses
