"""The broker a test talks to, and how each Kafka user reaches it.

By default that is the shared PLAINTEXT broker, where every user is the same anonymous client. With
``TEXTPULSE_TEST_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` the session runs a private SASL_SSL broker instead
(deploy/local/kafka.sh in that mode: TLS, SCRAM users, StandardAuthorizer) and each service process a
test starts connects as its own user, under the ACLs of libs/common/kafka_acls.py. The private broker
listens on ``TEXTPULSE_TEST_SASL_KAFKA_PORT`` (29201; controller +1) with its data in
``TEXTPULSE_TEST_SASL_VAR_DIR`` (var-sasl/), wiped when the session starts it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deploy.stack import REPO, VAR, access_from_file, wait_for_kafka
from harness.kafka import as_access
from libs.common.events import Event
from libs.common.kafka import ensure_topics
from libs.common.kafka_acls import USERS, all_acls, apply_acls
from libs.common.kafka_security import KafkaAccess
from libs.common.topics import TopicSpec

SASL_PORT = int(os.environ.get("TEXTPULSE_TEST_SASL_KAFKA_PORT", "29201"))
SASL_VAR = Path(os.environ.get("TEXTPULSE_TEST_SASL_VAR_DIR", REPO / "var-sasl"))


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

    def __init__(self, var: Path = SASL_VAR, port: int = SASL_PORT) -> None:
        self.var = var
        self.port = port

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "KAFKA_BOOTSTRAP_SERVERS" not in k}
        return env | {"TEXTPULSE_VAR_DIR": str(self.var), "TEXTPULSE_KAFKA_PORT": str(self.port),
                      "TEXTPULSE_KAFKA_CONTROLLER_PORT": str(self.port + 1),
                      "TEXTPULSE_KAFKA_LIBS": str(VAR / "kafka" / "libs"),
                      "TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TEXTPULSE_PYTHON": sys.executable}

    async def start(self) -> KafkaCluster:
        self._stop_leftover()
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
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            if not _running(pid):
                return
            await asyncio.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def _pid(self) -> int | None:
        try:
            pid = int((self.var / "run" / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _running(pid) else None

    def _stop_leftover(self) -> None:
        """A broker an interrupted session left running from this var dir is ours to stop."""
        pid = self._pid()
        if pid is not None and "kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGKILL)
            while _running(pid):
                time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def settings_overrides(kafka: KafkaAccess | str) -> dict[str, str]:
    """``load_settings`` keyword arguments for a process connecting as ``kafka`` says."""
    return as_access(kafka).settings_overrides()
