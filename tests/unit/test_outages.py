"""One definition of "PostgreSQL or Kafka is briefly unavailable", and what it leaves out."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from libs.common.outages import POSTGRES_UNAVAILABLE, is_kafka_outage, is_outage
from libs.common.polling import poll_forever, until_available


@pytest.mark.parametrize("exc", [
    asyncpg.CannotConnectNowError("the database system is starting up"),  # missed by the old poller's list
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
])
def test_postgres_going_away_is_an_outage(exc: BaseException) -> None:
    assert isinstance(exc, POSTGRES_UNAVAILABLE) and is_outage(exc)


def test_a_deadlock_or_cancelled_statement_is_retried_but_a_bad_statement_is_not() -> None:
    assert is_outage(asyncpg.DeadlockDetectedError("deadlock detected"))
    assert is_outage(asyncpg.QueryCanceledError("canceling statement due to statement timeout"))
    assert not is_outage(asyncpg.UniqueViolationError("duplicate key"))
    assert not is_outage(asyncpg.UndefinedColumnError("column does not exist"))
    assert not is_outage(ValueError("a bug"))


def test_kafka_outages_are_the_retriable_errors_and_the_client_time_out() -> None:
    for exc in (KafkaConnectionError(), NotLeaderForPartitionError(), KafkaTimeoutError()):
        assert is_kafka_outage(exc) and is_outage(exc)
    for exc in (TopicAuthorizationFailedError(), MessageSizeTooLargeError()):
        assert not is_outage(exc)


async def test_a_poller_waits_out_a_database_that_is_starting_up_and_stops_on_a_bug() -> None:
    calls: list[str] = []

    async def work() -> None:
        calls.append("work")
        if len(calls) == 1:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        if len(calls) == 2:
            raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await poll_forever(work, stalled="test.stalled", poll_s=0.01, first_stall_s=0.01)
    assert calls == ["work", "work"]


async def test_one_call_is_made_again_while_postgres_is_away_and_its_answer_returned() -> None:
    calls: list[str] = []

    async def read() -> str:
        calls.append("read")
        if len(calls) < 3:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return "rate"

    assert await until_available(read, stalled="test.stalled", first_stall_s=0.01) == "rate"
    assert calls == ["read"] * 3


async def test_a_call_waiting_for_postgres_gives_up_when_stopping_and_a_bug_is_raised_at_once() -> None:
    stopping = asyncio.Event()

    async def away() -> None:
        stopping.set()
        raise ConnectionRefusedError(111, "Connection refused")

    assert await until_available(away, stalled="test.stalled", stopping=stopping, first_stall_s=0.01) is None

    async def bug() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await until_available(bug, stalled="test.stalled")
