"""Signed Twilio webhooks against a real ``python -m services.optout`` (target: >= 2,500 req/s, p99 <= 50 ms).

    .venv/bin/python -m bench.webhooks [--rate 2500] [--seconds 10] [--stop-share 0.3] [--connections 64]
                                       [--layout split|all|edge-alone] [--clients 2]
    .venv/bin/python -m bench.webhooks outage [--outage-seconds 60] [--stops 200]

Status callbacks arrive at about three per message, so 800 messages/s of sending makes 2,400 callbacks/s.

Needs the local PostgreSQL and Kafka (``python -m deploy.stack infra``). The bench makes its own database
(migrated, dropped at the end) and its own topics (deleted at the end), seeds one organisation with a
Twilio account and a ledger of sent messages, and starts the opt-out service: ``--layout split`` (the
default) as one edge process (``TEXTPULSE_OPTOUT_ROLE=edge``, which Twilio's requests reach) and one
workers process (``workers``), as the Helm chart runs it; ``--layout all`` as one process doing both;
``--layout edge-alone`` as the edge alone during the load, the workers started after it to take the
backlog from Kafka: the edge with the machine's cores to itself, as when the workers run on other nodes
(on two cores, the workers and PostgreSQL's writes for them take about one).

Load is open-loop (bench/webhook_load.py): request i is due at ``i / rate`` seconds, whatever happened to
the earlier ones, and its latency is counted from that moment (so a stalled server is not hidden by a
waiting client). The mix is inbound STOPs from distinct numbers and status callbacks (queued -> sent ->
delivered, 5 % repeated verbatim, in a shuffled order), every one signed with the account's token. The
client is a minimal asyncio HTTP/1.1 one over keep-alive connections, with pre-built, pre-signed requests,
run in ``--clients`` processes; its own CPU is printed, so one can see it is not the bottleneck.

Each request is answered 200 once Kafka acknowledged it (``textpulse.webhooks``); the service's intake
consumer then writes it to ``webhook_requests`` and the processor applies it (services/optout/storage.py).

Printed: offered and achieved requests/s, p50/p95/p99/max latency, non-200 answers, the CPU time per
request of each service process and of the load clients (figures that do not depend on what else runs
on the machine) and the load average, where the edge's time goes (the form parse, the signature check,
the event's JSON and the Kafka append, each measured alone in this process on the same requests; the
rest is HTTP), then the rows:
every request stored (none lost), how long intake and processing took to catch up after the load,
suppressions, callbacks and ledger rows in their final state, and events published.

``outage`` runs the service on a private PostgreSQL (harness/private_postgres.py: a free port and a data
directory of the run's own, removed afterwards), stops it (fast shutdown) for ``--outage-seconds`` while
signed STOPs arrive, starts it again and prints how long after PostgreSQL accepted connections again every
STOP was applied (target: within 2 s).
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
from datetime import UTC, datetime
from urllib.parse import urlencode

import asyncpg
import uvloop
from twilio.request_validator import RequestValidator

from bench.cpu import cpu_seconds
from bench.report import result
from bench.webhook_load import run_load
from deploy.stack import kafka_access
from harness import factories
from harness.databases import create_database, drop_database
from harness.kafka import delete_topics_with_prefix
from harness.processes import free_port, stop_process, wait_ready
from libs.common.db import apply_migrations
from libs.common.kafka import EventPublisher, ensure_topics, make_producer
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import CONSENT, MESSAGE_STATUS, WEBHOOKS
from services.optout.db import IncomingWebhook
from services.optout.signatures import proves
from services.optout.storage import event_json, partition_key
from services.optout.webhooks import parse_form

TOPICS = [CONSENT, MESSAGE_STATUS, WEBHOOKS]

DEFAULT_DATABASE_URL = "postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse"


@dataclass(frozen=True)
class Seeded:
    org_id: uuid.UUID
    account_sid: str
    auth_token: str
    sender: str
    sids: list[str]


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


def _split(raw: bytes) -> tuple[str, str, bytes]:
    """(path, X-Twilio-Signature, body) of one pre-built request."""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    signature = next(line.split(": ", 1)[1] for line in lines if line.startswith("X-Twilio-Signature"))
    return lines[0].split()[1], signature, body


async def print_breakdown(s: Seeded, base_url: str, requests: list[bytes], kafka: KafkaAccess, prefix: str,
                          cpu_per_request: float, *, split: bool) -> None:
    """Where a request's CPU goes in the process that answers it: each step of the edge run alone in this
    process, on the same requests; the rest is HTTP (and, without the split, the workers' share too)."""
    sample = [_split(raw) for raw in requests[:3000]]
    validator = RequestValidator(s.auth_token)
    content_type = "application/x-www-form-urlencoded"
    started = time.process_time()
    forms = [parse_form(content_type, body) for _, _, body in sample]
    parse_s = (time.process_time() - started) / len(sample)
    started = time.process_time()
    valid = sum(proves(validator, base_url + path, form, signature)
                for (path, signature, _), form in zip(sample, forms, strict=True))
    signature_s = (time.process_time() - started) / len(sample)
    now = datetime.now(UTC)
    webhooks = [IncomingWebhook(uuid.uuid4(), "inbound" if path.endswith("inbound") else "status", s.org_id,
                                s.account_sid, base_url + path, dict(form), now)
                for (path, _, _), form in zip(sample, forms, strict=True)]
    started = time.process_time()
    for webhook in webhooks:
        event_json(webhook)
    event_s = (time.process_time() - started) / len(sample)

    spare = prefix + "breakdown."  # its own topic: the service's intake must not see these
    await ensure_topics(kafka, [WEBHOOKS], prefix=spare)
    producer = make_producer(kafka)
    await producer.start()
    try:
        publisher = EventPublisher(producer, prefix=spare)
        started, wall = time.process_time(), time.monotonic()
        for i in range(0, len(webhooks), 64):  # 64 in flight, as the load's connections
            await asyncio.gather(*(publisher.publish_json(WEBHOOKS, event_json(w), key=partition_key(w))
                                   for w in webhooks[i:i + 64]))
        append_s = (time.process_time() - started) / len(webhooks) - event_s
        append_wall = (time.monotonic() - wall) / len(webhooks)
    finally:
        await producer.stop()
        await delete_topics_with_prefix(kafka, spare)
    edge = parse_s + signature_s + event_s + append_s
    print(f"where it goes   CPU per request, each step alone ({len(sample)} requests, {valid} signatures valid):")
    for name, seconds in (("form parse", parse_s), ("signature check (HMAC-SHA1)", signature_s),
                          ("event JSON", event_s), ("Kafka append (producer, 64 in flight)", append_s)):
        print(f"                {name:40s} {seconds * 1000:6.3f} ms  ({seconds / cpu_per_request:5.1%})")
    rest = cpu_per_request - edge
    what, where = ("the rest: HTTP", "the edge") if split else ("the rest: HTTP, intake, processing", "the service")
    print(f"                {what:40s} {rest * 1000:6.3f} ms  "
          f"({rest / cpu_per_request:5.1%}) of {cpu_per_request * 1000:.3f} ms measured in {where}")
    print(f"                one append alone takes {append_wall * 1000:.2f} ms of wall time per request "
          f"when 64 are in flight (acks=all, linger 5 ms)")
    result("Webhooks: edge CPU per request (parse + signature + event + Kafka append)", "-",
           f"{edge * 1000:.3f} ms (signature {signature_s * 1000:.3f}, append {append_s * 1000:.3f})")


def start_service(env: dict[str, str], role: str, port: int, profile: str | None) -> subprocess.Popen[bytes]:
    """``python -m services.optout`` in ``role`` on ``port`` (under cProfile, stats to ``profile``, if given)."""
    command = [sys.executable, "-m", "services.optout"]
    if profile:
        command = [sys.executable, "-c", "import cProfile, runpy; cProfile.run("
                   "'runpy.run_module(\"services.optout\", run_name=\"__main__\")', " + repr(f"{profile}.{role}") + ")"]
    return subprocess.Popen(command, env=dict(env, TEXTPULSE_OPTOUT_ROLE=role, TEXTPULSE_HTTP_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def main(args: argparse.Namespace) -> None:
    admin_url = os.environ.get("TEXTPULSE_DATABASE_URL", DEFAULT_DATABASE_URL)
    kafka = kafka_access()
    name = f"textpulse_bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    total = int(args.rate * args.seconds)
    db_url = await create_database(name, server=admin_url)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        conn = await asyncpg.connect(db_url)
        await apply_migrations(conn)
        seeded = await seed(conn, base_url, messages=total // 3 + 1)
        requests = build_requests(seeded, base_url, total, args.stop_share, random.Random(7))
        await ensure_topics(kafka, TOPICS, prefix=prefix)
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_TOPIC_PREFIX=prefix, **kafka.env(),
                   TEXTPULSE_LOG_LEVEL=args.log_level)
        roles = {"edge": port, "workers": free_port()} if args.layout != "all" else {"all": port}
        later = {"workers": roles.pop("workers")} if args.layout == "edge-alone" else {}
        for role, role_port in roles.items():
            procs[role] = start_service(env, role, role_port, args.profile)
        for role, role_port in roles.items():
            await wait_ready(f"services.optout ({role})", role_port, procs[role], timeout=30)

        stops = sum(1 for r in requests if b"/twilio/inbound" in r[:40])
        print(f"sending {len(requests)} signed webhooks ({stops} STOP, {len(requests) - stops} status callbacks) "
              f"at {args.rate:.0f}/s over {args.connections} connections from {args.clients} client processes to "
              + ", ".join(f"services.optout {role} (pid {proc.pid})" for role, proc in procs.items()))
        cpu_before = {role: cpu_seconds(proc.pid) for role, proc in procs.items()}
        load_before = os.getloadavg()[0]
        run = await asyncio.to_thread(run_load, port, requests, args.rate, connections=args.connections,
                                      processes=args.clients)
        load_done = time.monotonic()
        cpu_load = {role: cpu_seconds(proc.pid) - cpu_before[role] for role, proc in procs.items()}
        load_after = os.getloadavg()[0]
        for role, role_port in later.items():
            procs[role] = start_service(env, role, role_port, args.profile)
            await wait_ready(f"services.optout ({role}, after the load)", role_port, procs[role], timeout=30)
        latencies, answered, elapsed = run.latencies, len(run.statuses), run.elapsed
        bad = sum(1 for status in run.statuses if status != 200)
        achieved = answered / elapsed
        print(f"requests/s      offered {args.rate:.0f}, achieved {achieved:.1f}   ({answered} in {elapsed:.2f} s)")
        p50, p95, p99 = (percentile(latencies, share) * 1000 for share in (0.50, 0.95, 0.99))
        print(f"latency ms      p50 {p50:.1f}   p95 {p95:.1f}   p99 {p99:.1f}   max {latencies[-1] * 1000:.1f}")
        print(f"non-200         {bad}")
        print(f"load average    {load_before:.2f} before the load, {load_after:.2f} after (1 min; "
              f"{os.cpu_count()} cores)")
        for role, seconds in cpu_load.items():
            print(f"CPU {role:11s} {seconds:.2f} s during the load = {seconds / answered * 1000:.3f} ms per request, "
                  f"{seconds / elapsed:.0%} of a core")
        print(f"CPU clients     {run.client_cpu_s:.2f} s in {run.processes} processes = "
              f"{run.client_cpu_s / answered * 1000:.3f} ms per request, {run.client_cpu_s / elapsed:.0%} of a core")

        while await conn.fetchval("SELECT count(*) FROM webhook_requests") < len(requests):
            if time.monotonic() - load_done > 120:
                break
            await asyncio.sleep(0.05)
        stored = await conn.fetchval("SELECT count(*) FROM webhook_requests")
        intake = time.monotonic() - load_done
        print(f"stored          {stored} of {len(requests)} ({'none lost' if stored == len(requests) else 'LOST'}), "
              f"the last {intake:.2f} s after the last response (intake from Kafka)")
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
        edge_role = "all" if args.layout == "all" else "edge"
        await print_breakdown(seeded, base_url, requests, kafka, prefix, cpu_load[edge_role] / answered,
                              split=args.layout != "all")
        label = {"split": "one edge process", "all": "one process doing everything",
                 "edge-alone": "one edge process, the workers after the load"}[args.layout]
        result(f"Webhooks: signed requests/s answered, {args.rate:g}/s offered, {label}", ">= 2,500 req/s",
               f"{achieved:.1f} req/s")
        result("Webhooks: p99 latency, open loop", "<= 50 ms",
               f"{p99:.1f} ms (p50 {p50:.1f}, p95 {p95:.1f}, max {latencies[-1] * 1000:.1f}; "
               f"load average {load_after:.2f})")
        result("Webhooks: non-200 answers", "= 0", str(bad))
        result("Webhooks: requests lost (answered but not stored)", "= 0", str(len(requests) - stored))
        for role, seconds in cpu_load.items():
            result(f"Webhooks: opt-out {role} CPU per request", "-", f"{seconds / answered * 1000:.3f} ms")
        result("Webhooks: load clients' CPU per request", "-", f"{run.client_cpu_s / answered * 1000:.3f} ms")
        await conn.close()
    finally:
        stop_services(procs)
        try:
            await delete_topics_with_prefix(kafka, prefix)
        finally:
            await drop_own_database(name, admin_url)


async def drop_own_database(name: str, server: str) -> None:
    """Drop the bench's database; a session of another role in it (someone's monitoring, say) makes the
    forced drop fail, so it is tried again for a while before the error is raised."""
    for attempt in range(10):
        try:
            await drop_database(name, server=server)
            return
        except asyncpg.InsufficientPrivilegeError:
            if attempt == 9:
                raise
            await asyncio.sleep(1)


async def outage(args: argparse.Namespace) -> None:
    """STOPs during a PostgreSQL outage: answered 200, then applied how soon after it is back."""
    from harness.private_postgres import PrivatePostgres

    pg = PrivatePostgres()
    await pg.start()
    db_url = await pg.create_database()
    kafka = kafka_access()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    proc = None
    try:
        conn = await asyncpg.connect(db_url)
        await apply_migrations(conn)
        seeded = await seed(conn, base_url, messages=1)
        await conn.close()
        requests = build_requests(seeded, base_url, args.stops + 1, 1.0, random.Random(11))
        await ensure_topics(kafka, TOPICS, prefix=prefix)
        env = dict(os.environ, TEXTPULSE_DATABASE_URL=db_url, TEXTPULSE_HTTP_PORT=str(port),
                   TEXTPULSE_TOPIC_PREFIX=prefix, **kafka.env(),
                   TEXTPULSE_LOG_LEVEL=args.log_level)
        proc = subprocess.Popen([sys.executable, "-m", "services.optout"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_ready("services.optout", port, proc, timeout=30)
        await asyncio.to_thread(run_load, port, requests[:1], 1, connections=1, processes=1)  # account now known
        await _applied(db_url, 1, timeout=30)

        await pg.stop("fast")
        down = time.monotonic()
        print(f"PostgreSQL stopped (fast shutdown); sending {args.stops} signed STOPs over "
              f"{args.outage_seconds * 0.8:.0f} s of a {args.outage_seconds:.0f} s outage")
        during = await asyncio.to_thread(run_load, port, requests[1:], args.stops / (args.outage_seconds * 0.8),
                                         connections=8, processes=1)
        latencies, statuses = during.latencies, during.statuses
        await asyncio.sleep(max(0.0, args.outage_seconds - (time.monotonic() - down)))
        accepting = asyncio.create_task(_first_connection(db_url))
        await pg.start()
        back = await accepting
        applied = await _applied(db_url, args.stops + 1, timeout=120)
        after = applied - back if applied is not None else float("nan")
        bad = sum(1 for status in statuses if status != 200)
        alive = proc.poll() is None
        check = await asyncpg.connect(db_url)
        try:
            history = await check.fetchval("SELECT count(*) FROM consent_history WHERE action = 'opt_out'")
        finally:
            await check.close()
        latencies.sort()
        print(f"answers         {len(statuses) - bad} of {len(statuses)} 200 during the outage, p99 "
              f"{percentile(latencies, 0.99) * 1000:.1f} ms")
        print(f"applied         every STOP {after:.2f} s after PostgreSQL accepted connections again; "
              f"consent history {history} rows for {args.stops + 1} STOPs x 2 scopes; service "
              f"{'still running' if alive else f'EXITED with {proc.returncode}'}")
        result(f"Webhooks: STOPs of a {args.outage_seconds:g} s PostgreSQL outage applied after it is back",
               "<= 2 s", f"{after:.2f} s")
        result("Webhooks: STOPs answered non-200 while PostgreSQL was down", "= 0", str(bad))
        result("Webhooks: consent history rows beyond one per STOP and scope", "= 0",
               str(history - 2 * (args.stops + 1)))
    finally:
        if proc is not None:
            stop_process(proc)
        await pg.remove()  # started for this run only: its data goes with it
        await delete_topics_with_prefix(kafka, prefix)


async def _first_connection(url: str) -> float:
    """When PostgreSQL first accepts a connection (monotonic time), polling every 10 ms."""
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=1)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await asyncio.sleep(0.01)
            continue
        at = time.monotonic()
        await conn.close()
        return at


async def _applied(url: str, stops: int, *, timeout: float) -> float | None:
    """When every STOP is suppressed organisation-wide (monotonic time), polling every 20 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(url, timeout=1)
            try:
                if await conn.fetchval("SELECT count(*) FROM suppressions WHERE scope = ''") >= stops:
                    return time.monotonic()
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            pass
        await asyncio.sleep(0.02)
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", default="load", choices=["load", "outage"])
    parser.add_argument("--rate", type=float, default=2500, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stop-share", type=float, default=0.3, help="share of inbound STOPs, the rest are callbacks")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections, all clients together")
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--layout", default="split", choices=["split", "all", "edge-alone"],
                        help="split: an edge and a workers process; all: one process doing both")
    parser.add_argument("--profile", metavar="FILE", help="run the services under cProfile, stats to FILE.<role>")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--outage-seconds", type=float, default=60, help="outage: how long PostgreSQL is down")
    parser.add_argument("--stops", type=int, default=200, help="outage: STOPs sent while it is down")
    parsed = parser.parse_args()
    uvloop.run(main(parsed) if parsed.mode == "load" else outage(parsed))
