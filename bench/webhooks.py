"""Signed Twilio webhooks against a real ``python -m services.optout`` (target: >= 500 req/s, p99 <= 50 ms).

    .venv/bin/python -m bench.webhooks [--rate 600] [--seconds 10] [--stop-share 0.3] [--connections 64]

Needs the local PostgreSQL and Kafka (``python -m deploy.stack infra``). The bench makes its own database
(migrated, dropped at the end) and its own topics (deleted at the end), seeds one organisation with a
Twilio account and a ledger of sent messages, and starts the opt-out service as its own process.

Load is open-loop: request i is due at ``i / rate`` seconds, whatever happened to the earlier ones, and
its latency is counted from that moment (so a stalled server is not hidden by a waiting client). The
mix is inbound STOPs from distinct numbers and status callbacks (queued -> sent -> delivered, 5 %
repeated verbatim, in a shuffled order), every one signed with the account's token. The client is a
minimal asyncio HTTP/1.1 one over keep-alive connections, with pre-built requests.

Printed: requests/s achieved, p50/p95/p99/max latency, non-200 answers, the service process's own CPU
time per request (a figure that does not depend on what else runs on the machine), then the rows: every request
stored (none lost), how long the processor took to apply the backlog after the load, suppressions,
callbacks and ledger rows in their final state, and events published.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import asyncpg
import uvloop
from twilio.request_validator import RequestValidator

from bench.report import result
from harness import factories
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix
from harness.processes import free_port, wait_ready
from libs.common.db import apply_migrations
from libs.common.kafka import ensure_topics
from libs.common.topics import CONSENT, MESSAGE_STATUS

DEFAULT_DATABASE_URL = "postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse"


@dataclass(frozen=True)
class Seeded:
    org_id: uuid.UUID
    account_sid: str
    auth_token: str
    sender: str
    sids: list[str]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


async def seed(conn: asyncpg.Connection, base_url: str, messages: int) -> Seeded:
    token, sender = secrets.token_hex(16), "+18885550100"
    org_id = await factories.make_org(conn, slug="bench", name="Bench")
    account_sid = await factories.make_sms_account(conn, org_id, auth_token=token, webhook_base_url=base_url)
    await factories.make_sender(conn, org_id, sender)
    campaign = await factories.make_campaign(conn, org_id, name="Bench", body="")
    run = await factories.make_run(conn, org_id, campaign, state="sending")
    sids = ["SM" + secrets.token_hex(16) for _ in range(messages)]
    await conn.copy_records_to_table(
        "send_ledger",
        columns=["run_id", "recipient_id", "org_id", "sender", "to_number", "segments", "state", "message_sid"],
        records=[(run, uuid.uuid4(), org_id, sender, f"+1415{n:07d}", 1, "sent", sid) for n, sid in enumerate(sids)],
    )
    return Seeded(org_id, account_sid, token, sender, sids)


def build_requests(s: Seeded, base_url: str, total: int, stop_share: float, rng: random.Random) -> list[bytes]:
    validator = RequestValidator(s.auth_token)
    host = base_url.split("://", 1)[1]

    def request(path: str, params: dict[str, str]) -> bytes:
        body = urlencode(params).encode()
        signature = validator.compute_signature(base_url + path, params)
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    stops = int(total * stop_share)
    out = []
    for n in range(stops):
        sid = "SM" + secrets.token_hex(16)
        out.append(request("/twilio/inbound", {
            "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": s.account_sid,
            "From": f"+1617{n:07d}", "To": s.sender, "Body": rng.choice(["STOP", "stop", "Stop ", "UNSUBSCRIBE"]),
            "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
            "FromCountry": "US", "ToCountry": "US",
        }))
    callbacks = []
    for n, sid in enumerate(s.sids):
        for status in ("queued", "sent", "delivered"):
            callbacks.append(request("/twilio/status", {
                "SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": f"+1415{n:07d}",
                "MessageSid": sid, "AccountSid": s.account_sid, "From": s.sender, "ApiVersion": "2010-04-01",
            }))
    need = total - stops
    callbacks = callbacks[: int(need * 0.95)]
    callbacks += rng.sample(callbacks, need - len(callbacks))  # Twilio repeats some callbacks verbatim
    out += callbacks
    rng.shuffle(out)
    return out


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def load(port: int, requests: list[bytes], rate: float, connections: int) -> tuple[list[float], list[int], float]:
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    statuses: list[int] = []
    loop = asyncio.get_running_loop()

    async def one(request: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            statuses.append(await conn.send(request))
        finally:
            idle.put_nowait(conn)
        latencies.append(loop.time() - due)

    start = loop.time() + 0.1
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not idle.empty():
        idle.get_nowait().writer.close()
    return latencies, statuses, elapsed




async def main(args: argparse.Namespace) -> None:
    admin_url = os.environ.get("TEXTPULSE_DATABASE_URL", DEFAULT_DATABASE_URL)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    total = int(args.rate * args.seconds)
    db_url = await create_database(name, server=admin_url)
    proc = None
    try:
        conn = await asyncpg.connect(db_url)
        await apply_migrations(conn)
        seeded = await seed(conn, base_url, messages=total // 3 + 1)
        requests = build_requests(seeded, base_url, total, args.stop_share, random.Random(7))
        await ensure_topics(bootstrap, [CONSENT, MESSAGE_STATUS], prefix=prefix)
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_HTTP_PORT=str(port),
                   TEXTPULSE_TOPIC_PREFIX=prefix, TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                   TEXTPULSE_LOG_LEVEL=args.log_level)
        command = [sys.executable, "-m", "services.optout"]
        if args.profile:
            command = [sys.executable, "-c", "import cProfile, runpy; cProfile.run("
                       "'runpy.run_module(\"services.optout\", run_name=\"__main__\")', " + repr(args.profile) + ")"]
        proc = subprocess.Popen(command, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_ready("services.optout", port, proc, timeout=30)

        stops = sum(1 for r in requests if b"/twilio/inbound" in r[:40])
        print(f"sending {len(requests)} signed webhooks ({stops} STOP, {len(requests) - stops} status callbacks) "
              f"at {args.rate:.0f}/s over {args.connections} connections to services.optout (pid {proc.pid})")
        cpu_before = cpu_seconds(proc.pid)
        latencies, statuses, elapsed = await load(port, requests, args.rate, args.connections)
        load_done = time.monotonic()
        cpu_load = cpu_seconds(proc.pid) - cpu_before
        latencies.sort()
        bad = sum(1 for s in statuses if s != 200)
        print(f"requests/s      {len(statuses) / elapsed:8.1f}   ({len(statuses)} in {elapsed:.2f} s)")
        p50, p95, p99 = (percentile(latencies, share) * 1000 for share in (0.50, 0.95, 0.99))
        print(f"latency ms      p50 {p50:.1f}   p95 {p95:.1f}   p99 {p99:.1f}   max {latencies[-1] * 1000:.1f}")
        print(f"non-200         {bad}")
        print(f"service CPU     {cpu_load:.2f} s during the load = {cpu_load / len(statuses) * 1000:.2f} ms per "
              f"request (HTTP and processing), so one process needs {cpu_load / elapsed:.0%} of a core at this rate")

        stored = await conn.fetchval("SELECT count(*) FROM webhook_requests")
        print(f"stored          {stored} of {len(requests)} ({'none lost' if stored == len(requests) else 'LOST'})")
        while await conn.fetchval("SELECT count(*) FROM webhook_requests WHERE state = 'pending'"):
            if time.monotonic() - load_done > 120:
                break
            await asyncio.sleep(0.05)
        drained = time.monotonic() - load_done
        while await conn.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NULL"):
            if time.monotonic() - load_done > 120:
                break
            await asyncio.sleep(0.05)
        published = time.monotonic() - load_done
        outcomes = {r["outcome"]: r["count"] for r in await conn.fetch(
            "SELECT outcome, count(*) FROM webhook_requests GROUP BY 1 ORDER BY 1")}
        print(f"processed       backlog applied {drained:.2f} s after the last response, events published "
              f"{published:.2f} s after; outcomes {outcomes}")
        suppressed = await conn.fetchval("SELECT count(DISTINCT phone) FROM suppressions")
        callbacks = await conn.fetchval("SELECT count(*) FROM status_callbacks")
        distinct = len({r for r in requests if b"/twilio/status" in r[:40]})
        ledger = {r["status"]: r["count"] for r in await conn.fetch(
            "SELECT coalesce(twilio_status, 'none') AS status, count(*) FROM send_ledger GROUP BY 1")}
        events = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NOT NULL")
        print(f"rows            suppressed numbers {suppressed} of {stops}; status callbacks {callbacks} of {distinct} "
              f"distinct; ledger {ledger}; events published {events}")
        result(f"Webhooks: signed requests/s answered, {args.rate:g}/s offered", ">= 500 req/s",
               f"{len(statuses) / elapsed:.1f} req/s")
        result("Webhooks: p99 latency, open loop", "<= 50 ms",
               f"{p99:.1f} ms (p50 {p50:.1f}, p95 {p95:.1f}, max {latencies[-1] * 1000:.1f})")
        result("Webhooks: non-200 answers", "= 0", str(bad))
        result("Webhooks: requests lost (answered but not stored)", "= 0", str(len(requests) - stored))
        result("Webhooks: opt-out service CPU per request", "-", f"{cpu_load / len(statuses) * 1000:.2f} ms")
        await conn.close()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await drop_database(name, server=admin_url)
        await delete_topics_with_prefix(bootstrap, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=600, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stop-share", type=float, default=0.3, help="share of inbound STOPs, the rest are callbacks")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--profile", metavar="FILE", help="run the service under cProfile, stats to FILE")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    uvloop.run(main(parser.parse_args()))
