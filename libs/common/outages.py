"""What "a dependency is briefly unavailable" means, defined once for every loop, handler and route.

Such a failure is a delay, never a loss: the caller backs off and tries the same work again (a consumer
does not commit, a poller waits for its next pass, the API answers 503 with Retry-After), and ``/readyz``
reports the failing check meanwhile. Anything else is a bug or bad input and is handled as such.
"""

from __future__ import annotations

from typing import Final

import asyncpg
from aiokafka.errors import KafkaError, KafkaTimeoutError

# PostgreSQL cannot be reached or is going away: refused or dropped connections (class 08), a shutdown or
# a server still starting (class 57: admin/crash shutdown, "cannot connect now"), too many connections
# (class 53), a pooled connection closed under us, and the socket's own errors and time-outs.
# InternalClientError ("cannot switch to state 15; another operation (2) is in progress") is what asyncpg
# raises for a statement sent on a pooled connection whose backend a fast shutdown has just ended, before
# the socket's close is seen; that connection is dropped and the next one is new.
POSTGRES_UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)

# The above, plus a transaction PostgreSQL rolled back to break a tie (deadlock, serialization failure)
# or cut short by a statement time-out: the same work succeeds when it is run again.
POSTGRES_RETRYABLE: Final[tuple[type[BaseException], ...]] = (
    *POSTGRES_UNAVAILABLE,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.QueryCanceledError,
)


def is_kafka_outage(exc: BaseException) -> bool:
    """A broker that cannot be reached, a leader being elected, a request that timed out: aiokafka marks
    these ``retriable``; an authorisation failure or an oversized record is not an outage."""
    return isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and bool(exc.retriable))


def is_outage(exc: BaseException) -> bool:
    """PostgreSQL or Kafka is briefly unavailable (see above)."""
    return isinstance(exc, POSTGRES_RETRYABLE) or is_kafka_outage(exc)
