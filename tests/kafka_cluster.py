"""The broker a test talks to, and how each Kafka user reaches it.

By default that is the shared PLAINTEXT broker, where every user is the same anonymous client. With
``TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` the session runs a private SASL_SSL broker instead
(deploy/local/kafka.sh in that mode: TLS, SCRAM users, StandardAuthorizer) and each service process a
test starts connects as its own user, under the ACLs of libs/common/kafka_acls.py. The private broker
listens on ports chosen free for the session, with its data in a directory of the session's own under
``var/runs/``, removed when it stops (harness/private_servers.py). ``TEXTPULSE_TEST_SASL_KAFKA_PORT``,
``TEXTPULSE_TEST_SASL_KAFKA_CONTROLLER_PORT`` and ``TEXTPULSE_TEST_SASL_VAR_DIR`` fix them (a directory given
so is wiped when the broker starts, and kept).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from deploy.stack import REPO, VAR, access_from_file, wait_for_kafka
from harness.kafka import as_access
from harness.private_servers import RunDir, running, server_port, stop_servers
from libs.common.events import Event
from libs.common.kafka import ensure_topics
from libs.common.kafka_acls import USERS, all_acls, apply_acls
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import TopicSpec


def sasl_requested() -> bool:
    """True when the session's tests run against the private SASL_SSL broker."""
    protocol = os.environ.get("TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    if protocol not in ("PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL={protocol!r}: PLAINTEXT or SASL_SSL")
    return protocol == "SASL_SSL"


@dataclass(frozen=True)
class KafkaCluster:
    """``admin`` creates topics and ACLs (the tests' own reads and writes use it too); ``user(service)`` is
    how that service's process connects, and ``service_env(service)`` the variables that say so."""

    admin: KafkaAccess
    users: dict[str, KafkaAccess] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.admin.bootstrap_servers

    @property
    def authenticates(self) -> bool:
        return bool(self.users)

    def user(self, service: str) -> KafkaAccess:
        return self.users[service] if self.users else self.admin

    def service_env(self, service: str) -> dict[str, str]:
        return self.user(service).env()

    async def prepare(self, specs: Iterable[TopicSpec[Event]], *, prefix: str) -> None:
        """Create the topics (and DLQs) for ``prefix`` and, on an authenticating broker, their ACLs."""
        await ensure_topics(self.admin, specs, prefix=prefix)
        if self.authenticates:
            await apply_acls(self.admin, all_acls(prefix))


class SaslBroker:
    """A private SASL_SSL broker run by deploy/local/kafka.sh, the way ``make demo`` would run it."""

    def __init__(self) -> None:
        self._dir = RunDir.create("sasl", "TEXTPULSE_TEST_SASL_VAR_DIR")
        self.var = self._dir.path
        self.port = server_port("TEXTPULSE_TEST_SASL_KAFKA_PORT")
        self.controller_port = server_port("TEXTPULSE_TEST_SASL_KAFKA_CONTROLLER_PORT")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "KAFKA_BOOTSTRAP_SERVERS" not in k}
        return env | {"TEXTPULSE_VAR_DIR": str(self.var), "TEXTPULSE_KAFKA_PORT": str(self.port),
                      "TEXTPULSE_KAFKA_CONTROLLER_PORT": str(self.controller_port),
                      "TEXTPULSE_KAFKA_LIBS": str(VAR / "kafka" / "libs"),
                      "TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TEXTPULSE_PYTHON": sys.executable}

    async def start(self) -> KafkaCluster:
        stop_servers(self.var)  # a broker an interrupted session left running from a directory it was given
        shutil.rmtree(self.var, ignore_errors=True)
        subprocess.run(["bash", str(REPO / "deploy/local/kafka.sh")], check=True, env=self._env(),
                       capture_output=True, timeout=600)
        cluster = KafkaCluster(self.access("admin"), {user: self.access(user) for user in USERS if user != "admin"})
        await wait_for_kafka(cluster.admin, timeout=180)
        return cluster

    def access(self, user: str) -> KafkaAccess:
        """How ``user`` connects, from the credentials file kafka.sh wrote for it."""
        return access_from_file(self.var / "kafka" / "clients" / f"{user}.env", f"127.0.0.1:{self.port}")

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after a minute) and delete the session's data."""
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            for _ in range(600):
                if not running(pid):
                    break
                await asyncio.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self._dir.remove()

    def _pid(self) -> int | None:
        try:
            pid = int((self.var / "run" / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if running(pid) else None


def settings_overrides(kafka: KafkaAccess | str) -> dict[str, str]:
    """``load_settings`` keyword arguments for a process connecting as ``kafka`` says."""
    return as_access(kafka).settings_overrides()
