"""After SIGTERM: drainable workers are asked to finish, the others cancelled, late ones cancelled at the deadline."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from libs.common import runtime
from libs.common.runtime import Worker, drain, health_router, run_worker


class Batches:
    """A worker that, asked to stop, finishes the batch in hand, then returns."""

    def __init__(self, *, obeys: bool = True) -> None:
        self.obeys = obeys
        self.stop_requested = asyncio.Event()
        self.finished_batch = False
        self.cancelled = False

    async def run(self) -> None:
        try:
            await self.stop_requested.wait()
            if not self.obeys:
                await asyncio.Event().wait()  # never returns: the deadline must cancel it
            await asyncio.sleep(0.01)  # the rest of the batch
            self.finished_batch = True
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def request_stop(self) -> None:
        self.stop_requested.set()


def start(workers: list[Worker]) -> list[tuple[Worker, asyncio.Task[None]]]:
    return [(w, asyncio.create_task(run_worker(w))) for w in workers]


async def test_a_drainable_worker_finishes_its_batch_and_a_plain_one_is_cancelled() -> None:
    batches = Batches()
    poller_cancelled = asyncio.Event()

    async def poller() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            poller_cancelled.set()
            raise

    running = start([batches, poller])
    await asyncio.sleep(0)
    assert await drain("test", running, drain_s=60) is True
    assert batches.finished_batch and not batches.cancelled
    assert poller_cancelled.is_set()
    assert all(task.done() for _, task in running)


async def test_a_worker_still_running_at_the_deadline_is_cancelled() -> None:
    stubborn, prompt = Batches(obeys=False), Batches()
    running = start([stubborn, prompt])
    await asyncio.sleep(0)
    assert await drain("test", running, drain_s=0.2) is False
    assert stubborn.stop_requested.is_set() and stubborn.cancelled
    assert prompt.finished_batch and not prompt.cancelled


async def test_no_workers_drain_at_once() -> None:
    assert await drain("test", [], drain_s=60) is True


async def test_readyz_says_draining_once_the_drain_began(monkeypatch: pytest.MonkeyPatch) -> None:
    app = FastAPI()

    async def fine() -> None:
        return None

    app.include_router(health_router("test", {"postgres": fine}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/readyz")).status_code == 200
        monkeypatch.setattr(runtime.PROCESS_DRAIN, "started", True)
        answer = await client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["status"] == "draining"
        assert (await client.get("/healthz")).status_code == 200  # still alive: liveness must not kill a drain
