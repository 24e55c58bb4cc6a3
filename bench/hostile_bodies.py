"""Hostile request bodies against a real ``python -m services.api``: how much its memory grows, and what it answers.

    .venv/bin/python -m bench.hostile_bodies [--json-mb 300] [--csv-mb 64]

Needs the local PostgreSQL and Kafka (``python -m deploy.stack infra``). Makes its own database (migrated,
dropped at the end) and topics (deleted at the end), seeds one organisation with an API key, and starts
the API as its own process. Its resident memory (``VmRSS`` in ``/proc``) is sampled every 10 ms while a
plain-socket client sends, one after the other:

1. an unauthenticated ``--json-mb`` (300 MB) chunked JSON body to ``POST /api/v1/campaigns``: the body cap
   answers 413 ``body_too_large`` and closes the connection after the first megabyte;
2. an authenticated ``--csv-mb`` (64 MB) CSV upload of ragged rows only (``1`` under a three-column header,
   33 million of them), with its ``Content-Length``: received whole (within the upload's cap), read as a
   stream and refused 422 ``csv_too_many_rows`` at row 500,001;
3. an authenticated 64 MB CSV of 490,000 long ragged rows, within the row cap: stored, answered 201 with
   every row counted by reason and a report of the first 5,000;
4. an authenticated ``--json-mb`` chunked CSV upload (no ``Content-Length``): refused 413 ``file_too_large``
   as the file passes the upload's cap, before a byte past it is spooled, and the connection closed.

Growth is the peak RSS during a request less the RSS just before it (after a warm-up of each route).
Target (issue 19): each <= 50 MB, each with its clear answer. Figures printed as ``RESULT`` lines
(bench/report.py), never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.api_process import running_api
from bench.report import result
from harness import factories
from libs.common.db import Connection

GROWTH_TARGET_MB = 50
MB = 1024 * 1024
BOUNDARY = "hostile-bodies-7f3a"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, object]
    closed: bool
    sent_bytes: int
    seconds: float

    @property
    def outcome(self) -> str:
        """``413 refused (body_too_large)``, ``422 refused (csv_too_many_rows)``, ``201 stored``: the
        status and a word the report compares with the target, then the problem's code."""
        code = self.body.get("code")
        return f"{self.status} refused ({code})" if code else f"{self.status} stored"


class RssSampler:
    """Peak VmRSS of ``pid`` between ``start`` and ``stop``, read from /proc every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self._pid, self._interval = pid, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak = 0

    def now(self) -> int:
        with open(f"/proc/{self._pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def start(self) -> None:
        self.peak = self.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, self.now())
        return self.peak

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self.now())


async def post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> Answer:
    """POST ``body`` over a plain socket, writing while the answer is read; stops writing once answered.

    Raw socket calls, not asyncio streams: a server that answers early and closes makes our next write
    fail with a reset, and a stream transport would then drop the answer it had not read yet."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    await loop.sock_sendall(sock, (head + "\r\n").encode())
    sent = 0

    async def write_body() -> None:
        nonlocal sent
        try:
            for chunk in body:
                await loop.sock_sendall(sock, chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server stopped reading: it has refused the body

    sending = asyncio.create_task(write_body())
    try:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await _recv(loop, sock)
        head_bytes, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode().split("\r\n")
        response_headers = {n.strip().lower(): v.strip() for n, _, v in (h.partition(":") for h in lines)}
        while len(rest) < int(response_headers["content-length"]):
            rest += await _recv(loop, sock)
        seconds = time.perf_counter() - started
        sending.cancel()
        try:  # closed at once, not after uvicorn's 5 s keep-alive
            closed = await asyncio.wait_for(loop.sock_recv(sock, 1), timeout=2) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    finally:
        sending.cancel()
        sock.close()
    return Answer(int(status_line.split()[1]), json.loads(rest), closed, sent, seconds)


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    data = await loop.sock_recv(sock, 65536)
    if not data:
        raise ConnectionError("the server closed the connection before answering")
    return data


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``pieces`` in HTTP/1.1 chunked framing."""
    for piece in pieces:
        if piece:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def chunked_json(total: int) -> Iterator[bytes]:
    return chunked(b"[" * CHUNK for _ in range(total // CHUNK))


def multipart(csv_chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="hostile.csv"\r\n'
           "Content-Type: text/csv\r\n\r\n").encode()
    yield from csv_chunks
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_length(csv_bytes: int) -> int:
    return sum(len(part) for part in multipart(iter([b""]))) + csv_bytes


def repeated_rows(header: bytes, row: bytes, rows: int) -> Iterator[bytes]:
    """``header`` then ``rows`` copies of ``row``, in chunks of about CHUNK bytes."""
    yield header
    per_chunk = max(1, CHUNK // len(row))
    for start in range(0, rows, per_chunk):
        yield row * min(per_chunk, rows - start)


async def measure(sampler: RssSampler, *, port: int, path: str, headers: dict[str, str],
                  body: Iterator[bytes]) -> tuple[Answer, int, int]:
    """(answer, RSS before, growth at peak) of one request."""
    before = sampler.now()
    sampler.start()
    try:
        answer = await post(port, path, headers, body)
    finally:
        peak = sampler.stop()
    return answer, before, peak - before


async def seed(conn: Connection) -> str:
    org_id = await factories.make_org(conn, slug="bench", name="Bench Association", time_zone="America/New_York")
    await factories.make_sender(conn, org_id, "+18885550100", is_default=True)
    return await factories.make_api_key(conn, org_id, name="bench", role="staff", actor="bench")


async def run_bench(json_mb: int, csv_mb: int) -> None:
    async with running_api(seed) as api:
        port, key, pid = api.port, str(api.seeded), api.pid
        sampler = RssSampler(pid)
        upload_head = {"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

        def upload(csv_bytes: int, rows: Iterator[bytes]) -> dict[str, object]:
            return {"port": port, "path": "/api/v1/audiences/csv", "body": multipart(rows),
                    "headers": {**upload_head, "Content-Length": str(multipart_length(csv_bytes))}}

        # Warm-up: each route once, small, so imports and caches are not counted as growth.
        await post(port, "/api/v1/campaigns", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                   chunked_json(2 * MB))
        small = b"ID,Mobile,Name\n1,4155550100,Ann\n2\n"
        await post(**upload(len(small), iter([small])))  # type: ignore[arg-type]

        json_body, json_before, json_growth = await measure(
            sampler, port=port, path="/api/v1/campaigns",
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            body=chunked_json(json_mb * MB))

        header, short_row = b"ID,Mobile,Name\n", b"1\n"
        short_rows = (csv_mb * MB - len(header)) // len(short_row)
        short_bytes = len(header) + short_rows * len(short_row)
        csv_body, csv_before, csv_growth = await measure(
            sampler, **upload(short_bytes, repeated_rows(header, short_row, short_rows)))  # type: ignore[arg-type]

        long_rows = 490_000
        long_row = b"1," + b"x" * ((csv_mb * MB - len(header)) // long_rows - 3) + b"\n"
        long_bytes = len(header) + long_rows * len(long_row)
        within, within_before, within_growth = await measure(
            sampler, **upload(long_bytes, repeated_rows(header, long_row, long_rows)))  # type: ignore[arg-type]

        good_row = b"1,4155550100,Ann\n"
        over_rows = json_mb * MB // len(good_row)
        over, over_before, over_growth = await measure(
            sampler, port=port, path="/api/v1/audiences/csv", headers={**upload_head, "Transfer-Encoding": "chunked"},
            body=chunked(multipart(repeated_rows(header, good_row, over_rows))))

    cases = [
        (f"unauthenticated {json_mb} MB chunked JSON body", json_body, json_before, json_growth, "413 refused"),
        (f"{short_bytes / MB:.0f} MB CSV of {short_rows:,} ragged rows", csv_body, csv_before, csv_growth,
         "422 refused"),
        (f"{long_bytes / MB:.0f} MB CSV of {long_rows:,} ragged rows (within the row cap)", within, within_before,
         within_growth, "201 stored"),
        (f"{json_mb} MB chunked CSV upload (over the 64 MB cap)", over, over_before, over_growth, "413 refused"),
    ]
    print(f"hostile bodies against services.api (pid {pid}), RSS sampled every 10 ms")
    for label, answer, before, growth, _ in cases:
        print(f"  {label}: {answer.outcome} after {answer.seconds:.1f} s, "
              f"{answer.sent_bytes / MB:.1f} MB sent, connection {'closed' if answer.closed else 'kept'}; "
              f"RSS {before / MB:.0f} MB before, +{growth / MB:.1f} MB at peak")
        said = {k: answer.body[k] for k in ("detail", "rows_rejected", "by_reason", "rejections_note")
                if k in answer.body}
        print(f"    {said}")
    for label, answer, _, growth, expected in cases:
        result(f"Hostile bodies: API RSS growth, {label}", f"<= {GROWTH_TARGET_MB} MB", f"{growth / MB:.1f} MB")
        result(f"Hostile bodies: answer to the {label}", f"= {expected}",
               f"{answer.outcome} in {answer.seconds:.1f} s{', connection closed' if answer.closed else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_bodies", description=__doc__.splitlines()[0])
    parser.add_argument("--json-mb", type=int, default=300)
    parser.add_argument("--csv-mb", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run_bench(args.json_mb, args.csv_mb))


if __name__ == "__main__":
    main()
