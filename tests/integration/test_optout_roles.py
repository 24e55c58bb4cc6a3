"""TEXTPULSE_OPTOUT_ROLE: what each role of the opt-out service runs (services/optout/main.py)."""

from __future__ import annotations

import asyncpg
import pytest

from libs.common.runtime import Drainable, Worker
from tests.integration.optout_harness import fresh_phone, running_optout

APPLYING = {"WebhookProcessor", "WebhookIntake", "EventRelay", "WritebackWorker"}


def worker_name(worker: Worker) -> str:
    """The class of a worker: a drainable one itself, otherwise the object its bound method belongs to."""
    return type(worker if isinstance(worker, Drainable) else worker.__self__).__name__  # type: ignore[attr-defined]


@pytest.mark.parametrize(("role", "workers", "answer"), [
    ("edge", {"SignatureRefusals"}, 200),
    ("workers", APPLYING, 404),
    ("all", APPLYING | {"SignatureRefusals"}, 200),
])
async def test_each_role_runs_its_own_workers_and_only_an_edge_answers_twilio(
    database_url: str, kafka_bootstrap: str, db_pool: asyncpg.Pool, role: str, workers: set[str], answer: int
) -> None:
    async with running_optout(database_url, kafka_bootstrap, db_pool, optout_role=role) as optout:
        assert {worker_name(worker) for worker in optout.service.workers} == workers
        org = await optout.new_org()
        assert (await optout.inbound(org, "STOP", fresh_phone())).status_code == answer
        assert (await optout.client.get("/readyz")).status_code == 200
