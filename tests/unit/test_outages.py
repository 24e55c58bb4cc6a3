"""One definition of "PostgreSQL or Kafka is briefly unavailable", and what it leaves out."""

from __future__ import annotations

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
from libs.common.polling import poll_forever


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
