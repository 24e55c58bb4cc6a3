"""How many message creates per second the Twilio stand-in sustains (target: 2,000/s on 2 cores).

    .venv/bin/python -m bench.standin_twilio [--messages 30000] [--connections 32] [--senders 10]

Starts ``python -m standins.twilio`` as its own process, adds ``--senders`` verified numbers draining at
``--rate`` segments/s (so the drain loop and status changes run during the measurement), then sends
``--messages`` creates over ``--connections`` keep-alive HTTP/1.1 connections. The client is a minimal
asyncio one (pre-built requests, Content-Length responses) so that it leaves the server most of the
second core. Bodies are a renewal template merged with names from the member data set, so segment
counting sees GSM-7 and UCS-2 bodies as a campaign would.

Two figures are printed: creates per wall-clock second, and creates per second of the server process's
own CPU time. The second does not depend on what else runs on the machine. The ``RESULT`` lines carry
them to ``python -m bench.run``'s table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlencode, urlsplit

import uvloop

from bench.cpu import cpu_seconds
from bench.report import result
from standins.members.dataset import iter_members
from standins.twilio.config import TwilioConfig

TEMPLATE = "Hi {name}, your membership renews on 1 July. Renew at https://example.org/r/{id} Reply STOP to opt out."


def start_standin(rate: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.twilio", "--port", "0", "--rate", str(rate), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"stand-in did not start: {line!r}")
    return proc, match.group(1)


def build_request(host: str, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def send_all(host: str, port: int, requests: list[bytes], connections: int) -> Counter[int]:
    """Send every request once, over ``connections`` keep-alive connections; count the statuses."""
    statuses: Counter[int] = Counter()
    cursor = 0

    async def connection() -> None:
        nonlocal cursor
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while cursor < len(requests):
                request = requests[cursor]
                cursor += 1
                writer.write(request)
                status, _ = await read_response(reader)
                statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses


async def call(host: str, port: int, method: str, path: str, payload: object | None = None) -> object:
    body = json.dumps(payload).encode() if payload is not None else b""
    request = build_request(f"{host}:{port}", method, path, body, {"Content-Type": "application/json"})
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    status, answer = await read_response(reader)
    writer.close()
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {answer[:200]!r}")
    return json.loads(answer)


async def run(url: str, pid: int, messages: int, connections: int, senders: int, rate: float) -> None:
    config = TwilioConfig()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    auth = "Basic " + base64.b64encode(f"{config.account_sid}:{config.auth_token}".encode()).decode()
    path = f"/2010-04-01/Accounts/{config.account_sid}/Messages.json"
    numbers = [f"+1888555{2000 + i:04d}" for i in range(senders)]
    for number in numbers:
        await call(host, port, "PUT", f"/_control/numbers/{number}", {"rate": rate})
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    requests = [
        build_request(
            f"{host}:{port}",
            "POST",
            path,
            urlencode(
                {"To": f"+1415555{i % 10_000:04d}", "From": numbers[i % senders],
                 "Body": TEMPLATE.format(name=m.informal_name, id=m.id)}
            ).encode(),
            headers,
        )
        for i, m in enumerate(iter_members(count=messages))
    ]
    warmup = min(2_000, messages // 10)
    await send_all(host, port, requests[:warmup], connections)
    measured = requests[warmup:]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    statuses = await send_all(host, port, measured, connections)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(pid) - cpu_before
    summary = await call(host, port, "GET", "/_control/arrivals/summary")
    logged = sum(s["messages"] for s in summary["senders"].values())  # type: ignore[index]
    print(
        f"creates: {len(measured)} in {elapsed:.2f} s = {len(measured) / elapsed:,.0f} creates/s wall-clock "
        f"({connections} connections, {senders} senders at {rate:g} segments/s)"
    )
    print(
        f"server CPU: {server_cpu:.2f} s = {len(measured) / server_cpu:,.0f} creates per CPU-second "
        f"({server_cpu / len(measured) * 1e6:.0f} us each); load average now {os.getloadavg()[0]:.2f}"
    )
    print(f"HTTP statuses: {dict(statuses)}; arrival log holds {logged} messages (warm-up included)")
    result(f"Twilio stand-in: creates/s, wall-clock, {connections} connections", ">= 2,000 creates/s",
           f"{len(measured) / elapsed:,.0f} creates/s")
    result("Twilio stand-in: creates per second of its own CPU", "-", f"{len(measured) / server_cpu:,.0f} creates/s")
    refused = sum(n for code, n in statuses.items() if code != 201)
    result("Twilio stand-in: creates not answered 201", "= 0", str(refused))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--messages", type=int, default=30_000)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=200.0, help="segments/s each sender drains")
    args = p.parse_args()
    proc, url = start_standin(args.rate)
    try:
        uvloop.run(run(url, proc.pid, args.messages, args.connections, args.senders, args.rate))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
