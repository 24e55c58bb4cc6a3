"""The opt-out service while its PostgreSQL (a private one, harness/private_postgres.py) or its broker is down.

A STOP signed as Twilio signs it and received while PostgreSQL is stopped is answered 200 (it is in Kafka),
and once PostgreSQL is back it is applied exactly once: its suppressions, its consent history, its events.
No worker ends meanwhile, and /readyz answers 200 "degraded" naming the failing check (a webhook can still
be made durable). With Kafka down too, webhooks and /readyz are answered 503 (a 503 promises nothing: the
STOP may still arrive through an append the Kafka client kept, and is then applied once).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from harness.private_postgres import PrivatePostgres
from libs.common.db import create_pool
from libs.common.outages import is_outage
from tests.conftest import eventually
from tests.integration.optout_harness import FAST, OptoutHarness, Org, fresh_phone, running_optout
from tests.integration.test_broker_restart import OwnBroker

T = TypeVar("T")

# Every request during the outage needs the account from memory: the cache's TTL is long past by then.
TUNING = replace(FAST, account_cache_s=0.05)


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[PrivatePostgres]:
    own = PrivatePostgres()
    await own.start()
    yield own
    await own.remove()


@pytest.fixture
async def database(postgres: PrivatePostgres) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    await postgres.start()  # a test that failed half-way may have left it stopped
    url = await postgres.create_database()
    pool = await create_pool(url, min_size=0, max_size=4)
    yield url, pool
    await pool.close()
    await postgres.start()
    await postgres.drop_database(url)


def unless_down(probe: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T | None]]:
    """``probe``, reading None while PostgreSQL is still coming back (a pooled connection it dropped)."""
    async def probing() -> T | None:
        try:
            return await probe()
        except Exception as exc:
            if not is_outage(exc):
                raise
            return None
    return probing


async def _consent_history(optout: OptoutHarness, org: Org, phones: list[str]) -> list[tuple[str, str, str]]:
    rows = await optout.fetch(
        "SELECT phone, scope, action FROM consent_history WHERE org_id = $1 AND phone = any($2::text[])",
        org.id, phones)
    return sorted((r["phone"], r["scope"], r["action"]) for r in rows)


def _opted_out_once(org: Org, phones: list[str]) -> list[tuple[str, str, str]]:
    return sorted((p, scope, "opt_out") for p in phones for scope in ("", org.sender))


async def _applied_once(optout: OptoutHarness, org: Org, phones: list[str]) -> bool:
    if not await optout.settled(org):
        return False
    history = await _consent_history(optout, org, phones)
    want = _opted_out_once(org, phones)
    # The relay publishes at least once: a batch the broker took while PostgreSQL went away is sent again,
    # with the same event ids, which consumers already skip. Two events per number, however often each came.
    return history == want and all(len({e["event_id"] for e in optout.events.consent(p)}) == 2 for p in phones)


async def _readiness(optout: OptoutHarness) -> tuple[int, dict[str, Any]]:
    response = await optout.client.get("/readyz")
    return response.status_code, response.json()


async def test_stops_during_a_postgres_outage_are_answered_200_and_applied_once_it_is_back(
    postgres: PrivatePostgres, database: tuple[str, asyncpg.Pool], kafka_bootstrap: str
) -> None:
    url, pool = database
    async with running_optout(url, kafka_bootstrap, pool, tuning=TUNING) as optout:
        org = await optout.new_org()
        before = fresh_phone()
        assert (await optout.inbound(org, "STOP", before)).status_code == 200  # the account is now known
        await eventually(lambda: _applied_once(optout, org, [before]), timeout=30)

        await postgres.stop("fast")
        phones = [fresh_phone() for _ in range(5)]
        requests = [optout.inbound_params(org, "STOP", phone) for phone in phones]
        requests.append(requests[0])  # a verbatim repeat of a request is Twilio retrying it
        answers = [(await optout.signed(org, "/twilio/inbound", params)).status_code for params in requests]
        status, body = await _readiness(optout)
        assert answers == [200] * 6
        assert (status, body["status"], body["failing"]) == (200, "degraded", ["postgres"])
        assert body["checks"]["postgres"].startswith("failed") and body["checks"]["kafka"] == "ok"

        await postgres.start()
        await eventually(unless_down(lambda: _applied_once(optout, org, [before, *phones])), timeout=90)
        await eventually(lambda: _ready(optout), timeout=30)
        for phone in phones:
            assert await optout.scopes_suppressed(org, phone) == {"", org.sender}
        inbound = await optout.fetch("SELECT message_sid FROM inbound_messages WHERE org_id = $1 AND phone = $2",
                                     org.id, phones[0])
        assert len(inbound) == 1  # the retry is stored as a request, and applied as a duplicate
        assert await optout.webhook_count(org) == 1 + 6
        assert optout.workers_alive()

        after = fresh_phone()  # and it goes on as before
        assert (await optout.inbound(org, "STOP", after)).status_code == 200
        await eventually(lambda: _applied_once(optout, org, [after]), timeout=30)


async def _ready(optout: OptoutHarness) -> bool:
    return (await _readiness(optout))[1]["status"] == "ready"


@contextlib.asynccontextmanager
async def _restarted(postgres: PrivatePostgres, broker: OwnBroker) -> AsyncIterator[None]:
    """Both back however the test ends: a producer cannot stop while its broker is away."""
    try:
        yield
    finally:
        await postgres.start()
        await broker.start()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[OwnBroker]:
    own = OwnBroker(tmp_path / "var")
    await own.start()
    yield own
    with contextlib.suppress(Exception):
        await own.stop()


async def test_with_kafka_down_stops_go_to_postgres_and_with_both_down_the_answer_is_503(
    postgres: PrivatePostgres, database: tuple[str, asyncpg.Pool], broker: OwnBroker
) -> None:
    url, pool = database
    async with running_optout(url, broker.bootstrap, pool, tuning=TUNING) as optout, _restarted(postgres, broker):
        org = await optout.new_org()
        first = fresh_phone()
        assert (await optout.inbound(org, "STOP", first)).status_code == 200
        await eventually(lambda: _applied_once(optout, org, [first]), timeout=30)

        await broker.stop()
        direct = [fresh_phone() for _ in range(3)]
        assert [(await optout.inbound(org, "STOP", phone)).status_code for phone in direct] == [200] * 3
        status, body = await _readiness(optout)
        assert (status, body["status"], body["failing"]) == (200, "degraded", ["kafka"])
        await eventually(lambda: _suppressed(optout, org, direct), timeout=30)  # applied from PostgreSQL

        await postgres.stop("fast")
        lost = fresh_phone()
        assert (await optout.inbound(org, "STOP", lost)).status_code == 503  # Twilio is told; nothing pretends
        status, body = await _readiness(optout)
        assert (status, body["status"], body["failing"]) == (503, "not_ready", ["kafka", "postgres"])

        await postgres.start()
        await broker.start()
        await eventually(lambda: _ready(optout), timeout=120)
        # The ConsentChanged events of the direct writes were waiting in the outbox for the broker.
        await eventually(unless_down(lambda: _applied_once(optout, org, [first, *direct])), timeout=120)
        # A request that probed the broker while it was down left its append with the Kafka client, which is
        # not withdrawn when the answer gives up: the broker back, it may still deliver the STOP answered 503.
        # Then it is applied like any other, once; a member's STOP is never applied twice.
        assert await _consent_history(optout, org, [lost]) in ([], _opted_out_once(org, [lost]))
        assert optout.workers_alive()

        again = fresh_phone()
        assert (await optout.inbound(org, "STOP", again)).status_code == 200
        await eventually(lambda: _applied_once(optout, org, [again]), timeout=60)


async def _suppressed(optout: OptoutHarness, org: Org, phones: list[str]) -> bool:
    return all([await optout.scopes_suppressed(org, p) == {"", org.sender} for p in phones])
