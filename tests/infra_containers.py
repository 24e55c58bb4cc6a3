"""The test session's PostgreSQL and Kafka as containers (``TEXTPULSE_TEST_INFRA=containers`` or ``auto``),
started with testcontainers; ``deploy/stack.py`` decides when. A dev dependency, so it lives with the tests.

Same images as docker-compose.yml: ``postgres:15`` and the official ``apache/kafka`` in KRaft mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testcontainers.community.kafka import KafkaContainer

POSTGRES_IMAGE = "postgres:15"
KAFKA_IMAGE = "apache/kafka:4.1.1"
START_TIMEOUT_S = 180  # a first run pulls the images


def docker_engine_answers() -> bool:
    """True if the Docker engine testcontainers would use (DOCKER_HOST, a context, the socket) answers a ping."""
    try:
        from testcontainers.core.docker_client import DockerClient

        return bool(DockerClient().client.ping())
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission, testcontainers missing: all "no"
        return False


@dataclass(frozen=True)
class Started:
    database_url: str | None = None
    kafka_bootstrap: str | None = None


@contextmanager
def started(*, postgres: bool, kafka: bool) -> Iterator[Started]:
    """Start the asked-for containers; they are removed when the block ends (and by testcontainers' reaper
    if this process dies first)."""
    with ExitStack() as stack:
        database_url = bootstrap = None
        if postgres:
            from testcontainers.community.postgres import PostgresContainer

            pg = stack.enter_context(PostgresContainer(POSTGRES_IMAGE, username="textpulse", password="textpulse",
                                                       dbname="textpulse", driver=None))
            database_url = pg.get_connection_url(driver=None)
        if kafka:
            broker = _apache_kafka()
            broker.start(timeout=START_TIMEOUT_S)
            stack.callback(broker.stop)
            bootstrap = broker.get_bootstrap_server()
        yield Started(database_url, bootstrap)


def _apache_kafka() -> KafkaContainer:  # the class is defined here: it needs testcontainers, imported only when used
    from testcontainers.community.kafka import KafkaContainer

    class ApacheKafkaContainer(KafkaContainer):
        """testcontainers' KafkaContainer writes a start script for Confluent's image; the apache/kafka
        image takes the same KAFKA_* variables but starts with its own /etc/kafka/docker/run."""

        def __init__(self) -> None:
            super().__init__(KAFKA_IMAGE)
            self.kraft_enabled = True  # with_kraft() would compare our tag with Confluent Platform's 7.0.0
            self.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")  # as in production: topics.py creates them
            self.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            self.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")

        def tc_start(self) -> None:
            host, port = self.get_container_host_ip(), self.get_exposed_port(self.port)
            script = (f"export KAFKA_ADVERTISED_LISTENERS={self.listener_name}://{host}:{port},"
                      "BROKER://$(hostname -i):9092\nexec /etc/kafka/docker/run\n")
            self.create_file(script.encode(), self.TC_START_SCRIPT)

    return ApacheKafkaContainer()
