"""An open-loop HTTP/1.1 load of pre-built requests, from several processes so the client is not the bottleneck.

Request i is due at ``start + i / rate`` whatever happened to the earlier ones, and its latency is counted
from that moment, so a stalled server is not hidden by a waiting client. Process p of n sends requests
p, p + n, p + 2n, ... over its own keep-alive connections; each connection takes the next request due,
waits for its time, sends it and reads the answer. The processes share the machine's monotonic clock.

Each process reports its own CPU time, so the bench can print what the load itself cost.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import uvloop


@dataclass(frozen=True)
class LoadResult:
    latencies: list[float]  # seconds from each request's due time to its answer, sorted
    statuses: list[int]
    elapsed: float  # from the first request's due time to the last answer
    client_cpu_s: float  # CPU time of every client process together
    processes: int


class HttpConnection:
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


async def _send_all(port: int, rate: float, first: int, step: int, requests: list[bytes], connections: int,
                    control: Connection) -> tuple[list[float], list[int]]:
    conns = [HttpConnection(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(connections)]
    control.send("connected")
    start: float = control.recv()  # the same for every client process
    due = [start + (first + n * step) / rate for n in range(len(requests))]
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    indices = iter(range(len(requests)))  # shared: each free connection takes the next request due

    async def send_next(conn: HttpConnection) -> None:
        try:
            for i in indices:
                delay = due[i] - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                statuses[i] = await conn.send(requests[i])
                latencies[i] = time.monotonic() - due[i]
        finally:
            conn.writer.close()

    await asyncio.gather(*(send_next(conn) for conn in conns))
    return latencies, statuses


def _client(port: int, rate: float, first: int, step: int, requests: list[bytes], connections: int,
            control: Connection) -> None:
    cpu = time.process_time()
    latencies, statuses = uvloop.run(_send_all(port, rate, first, step, requests, connections, control))
    control.send((latencies, statuses, time.monotonic(), time.process_time() - cpu))
    control.close()


def run_load(port: int, requests: list[bytes], rate: float, *, connections: int, processes: int) -> LoadResult:
    """Send ``requests`` at ``rate`` per second over ``connections`` connections in all, split over
    ``processes`` client processes; blocks until every request is answered."""
    context = multiprocessing.get_context("spawn")  # the caller runs an event loop: do not fork it
    pipes, workers = [], []
    for p in range(processes):
        ours, theirs = context.Pipe()
        share = max(1, connections // processes + (1 if p < connections % processes else 0))
        worker = context.Process(target=_client, args=(port, rate, p, processes, requests[p::processes], share,
                                                       theirs), daemon=True)
        worker.start()
        theirs.close()
        pipes.append(ours)
        workers.append(worker)
    for ours in pipes:
        if ours.recv() != "connected":
            raise RuntimeError("a load client could not connect")
    start = time.monotonic() + 0.1
    for ours in pipes:
        ours.send(start)
    latencies: list[float] = []
    statuses: list[int] = []
    ended, cpu = start, 0.0
    for ours, worker in zip(pipes, workers, strict=True):
        part_latencies, part_statuses, finished, part_cpu = ours.recv()
        worker.join()
        latencies += part_latencies
        statuses += part_statuses
        ended, cpu = max(ended, finished), cpu + part_cpu
    latencies.sort()
    return LoadResult(latencies, statuses, ended - start, cpu, processes)
