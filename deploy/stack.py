"""Brings the local Textpulse stack up and down: ``python -m deploy.stack up|infra|down|status|test``.

- ``infra``: PostgreSQL and Apache Kafka as local processes (deploy/local/*.sh), then migrations and
  topics. With ``KAFKA_BOOTSTRAP_SERVERS`` or ``TEXTPULSE_DATABASE_URL`` set, those are used instead.
  ``TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` runs the local broker with TLS, SCRAM users and ACLs
  (applied here, after the topics); each service then connects as its own Kafka user.
- ``up``: ``infra``, then the stand-ins and every service as its own process; waits for each one's
  ``/readyz`` and prints where the dashboard is.
- ``down [--wipe]``: stops exactly the processes this tool started, by the pids it recorded in
  ``var/run`` (checked against each process's start time, so a recycled pid is never killed).
  ``--wipe`` also deletes ``var/`` data.
- ``test [pytest args]``: ``infra`` (reusing what is already running), runs pytest, and stops what it
  started itself. ``TEXTPULSE_TEST_INFRA=containers`` runs that PostgreSQL and Kafka as containers
  instead (testcontainers, tests/infra_containers.py); ``auto`` does so when a Docker engine answers.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libs.common.kafka_security import KafkaAccess

REPO = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("TEXTPULSE_VAR_DIR", REPO / "var"))
RUN, LOG = VAR / "run", VAR / "log"
PYTHON = sys.executable

PG_PORT = int(os.environ.get("TEXTPULSE_PG_PORT", "55432"))
KAFKA_PORT = int(os.environ.get("TEXTPULSE_KAFKA_PORT", "19092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("TEXTPULSE_KAFKA_CONTROLLER_PORT", str(KAFKA_PORT + 1)))
PORT_BASE = int(os.environ.get("TEXTPULSE_PORT_BASE", "8000"))
DISPATCHERS = int(os.environ.get("TEXTPULSE_DISPATCHERS", "2"))
SMTP_CATCHER_PORT, SMTP_PORT = PORT_BASE + 82, PORT_BASE + 25  # the catcher's HTTP API, and where mail goes
OUTBOX = VAR / "outbox"


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    port: int
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # on top of service_env

    @property
    def service(self) -> str | None:
        """The service it runs (its Kafka user), None for a stand-in."""
        return self.module.split(".")[1] if self.module.startswith("services.") else None


def database_url() -> str:
    return os.environ.get("TEXTPULSE_DATABASE_URL") or f"postgresql://textpulse:textpulse@127.0.0.1:{PG_PORT}/textpulse"


def bootstrap_servers() -> str:
    return (
        os.environ.get("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS")
        or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or f"127.0.0.1:{KAFKA_PORT}"
    )


def local_sasl() -> bool:
    """True when this tool runs the broker itself in SASL_SSL mode (deploy/local/kafka.sh)."""
    return not kafka_given() and os.environ.get("TEXTPULSE_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL"


def kafka_access(user: str = "admin") -> KafkaAccess:
    """How ``user`` reaches Kafka: on the local SASL_SSL broker with the credentials kafka.sh made for that
    user (var/kafka/clients/<user>.env); otherwise as the ``TEXTPULSE_KAFKA_*`` variables say."""
    from libs.common.settings import load_settings

    if local_sasl():
        return access_from_file(VAR / "kafka" / "clients" / f"{user}.env", bootstrap_servers())
    return load_settings(kafka_bootstrap_servers=bootstrap_servers()).kafka


def access_from_file(path: Path, bootstrap: str) -> KafkaAccess:
    """The Kafka access a ``<user>.env`` file of deploy/local/kafka_tls.sh gives (KEY=VALUE lines)."""
    from libs.common.settings import load_settings

    overrides: dict[str, object] = {"kafka_bootstrap_servers": bootstrap}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        overrides[name.removeprefix("TEXTPULSE_").lower()] = value
    return load_settings(**overrides).kafka


def processes() -> list[Process]:
    """Every process of the stack, in start order; stand-ins only once they exist in the tree."""
    procs = []
    if importlib.util.find_spec("standins.twilio.__main__"):
        inbound = f"http://127.0.0.1:{PORT_BASE + 1}/twilio/inbound"  # the opt-out service's webhook
        procs.append(Process("twilio-standin", "standins.twilio", PORT_BASE + 80, ("--inbound-url", inbound)))
    if importlib.util.find_spec("standins.imis.__main__"):
        procs.append(Process("imis-standin", "standins.imis", PORT_BASE + 81, ("--dataset", "full")))
    if importlib.util.find_spec("standins.smtp.__main__"):
        procs.append(Process("smtp-catcher", "standins.smtp", SMTP_CATCHER_PORT,
                             ("--smtp-port", str(SMTP_PORT), "--outbox", str(OUTBOX))))
    procs += [
        Process("api", "services.api", PORT_BASE),
        # The opt-out edge answers Twilio; its workers apply what it stored (services/optout/main.py).
        Process("optout", "services.optout", PORT_BASE + 1, env=(("TEXTPULSE_OPTOUT_ROLE", "edge"),)),
        Process("optout-workers", "services.optout", PORT_BASE + 5, env=(("TEXTPULSE_OPTOUT_ROLE", "workers"),)),
        Process("scheduler", "services.scheduler", PORT_BASE + 2),
        Process("audience", "services.audience", PORT_BASE + 3),
        Process("usage", "services.usage", PORT_BASE + 4),
        Process("links", "services.links", PORT_BASE + 6),
        Process("events", "services.events", PORT_BASE + 7),
    ]
    procs += [Process(f"dispatcher-{i}", "services.dispatcher", PORT_BASE + 10 + i) for i in range(1, DISPATCHERS + 1)]
    return procs


def service_env(port: int, service: str | None = None) -> dict[str, str]:
    """The environment every service process gets: where PostgreSQL, Kafka and the stand-ins are, and the
    Kafka user of ``service``."""
    env = dict(os.environ)
    if service is not None:
        env.update(kafka_access(service).env())
    env.update(
        TEXTPULSE_DATABASE_URL=database_url(),
        TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers(),
        TEXTPULSE_HTTP_PORT=str(port),
        TEXTPULSE_PUBLIC_BASE_URL=os.environ.get("TEXTPULSE_PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT_BASE}"),
        TEXTPULSE_TWILIO_API_BASE_URL=f"http://127.0.0.1:{PORT_BASE + 80}",
        TEXTPULSE_TWILIO_MESSAGING_BASE_URL=f"http://127.0.0.1:{PORT_BASE + 80}",
        TEXTPULSE_IMIS_BASE_URL=f"http://127.0.0.1:{PORT_BASE + 81}",
        # The demo's short domain: tracked links point at the local links service.
        TEXTPULSE_SHORT_LINK_BASE_URL=f"http://127.0.0.1:{PORT_BASE + 6}",
        # Alert e-mails go to the SMTP catcher, and the dashboard shows what it caught.
        TEXTPULSE_SMTP_HOST="127.0.0.1",
        TEXTPULSE_SMTP_PORT=str(SMTP_PORT),
        TEXTPULSE_SMTP_STARTTLS="false",
        TEXTPULSE_DEMO_OUTBOX_URL=f"http://127.0.0.1:{SMTP_CATCHER_PORT}",
    )
    return env


# ---------------------------------------------------------------------------------------------
# Infrastructure


def database_given() -> bool:
    return bool(os.environ.get("TEXTPULSE_DATABASE_URL"))


def kafka_given() -> bool:
    return bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS"))


def infra() -> list[str]:
    """Start PostgreSQL and Kafka unless given; migrate; create topics. Return what was started."""
    started = []
    if not database_given():
        if not _alive("postgres"):
            started.append("postgres")
        _sh("postgres.sh")
    if not kafka_given():
        if not _alive("kafka"):
            started.append("kafka")
        _sh("kafka.sh")
    asyncio.run(_prepare())
    return started


TEST_INFRA_MODES = ("local", "containers", "auto")


def choose_test_infra(mode: str | None, engine_answers: Callable[[], bool]) -> str:
    """Where ``make test`` runs PostgreSQL and Kafka, from ``TEXTPULSE_TEST_INFRA``: "local" (processes, as
    ``infra``; the default) or "containers". ``auto`` is containers when a Docker engine answers, else local;
    ``containers`` without an engine stops with the reason. ``engine_answers`` is asked only when it matters.
    """
    mode = mode or "local"
    if mode not in TEST_INFRA_MODES:
        raise SystemExit(f"TEXTPULSE_TEST_INFRA={mode!r} is not one of {', '.join(TEST_INFRA_MODES)}")
    if mode == "local":
        return "local"
    if engine_answers():
        return "containers"
    if mode == "containers":
        raise SystemExit("TEXTPULSE_TEST_INFRA=containers, but no Docker engine answers (DOCKER_HOST, the "
                         "Docker context or /var/run/docker.sock); start one, or use local or auto")
    return "local"


async def _prepare() -> None:
    import asyncpg

    from deploy.migrate import migrate
    from libs.common.kafka import ensure_topics
    from libs.common.kafka_acls import all_acls, apply_acls
    from libs.common.settings import load_settings
    from libs.common.topics import ALL_TOPICS

    admin = kafka_access()
    conn = await asyncpg.connect(database_url())
    try:
        applied, sealed = await migrate(conn, load_settings(database_url=database_url(), **admin.settings_overrides()))
    finally:
        await conn.close()
    print(f"postgres: migrations applied now: {applied or 'none (up to date)'}; credentials sealed now: {sealed}")

    await wait_for_kafka(admin, timeout=90)
    replication = int(os.environ.get("TEXTPULSE_KAFKA_REPLICATION_FACTOR", "1"))
    prefix = os.environ.get("TEXTPULSE_TOPIC_PREFIX", "")
    found = await ensure_topics(admin, ALL_TOPICS, prefix=prefix, replication_factor=replication)
    print(f"kafka: {len(found)} topics ready ({', '.join(f'{n}:{p}' for n, p in sorted(found.items()))})")
    if local_sasl():
        print(f"kafka: {await apply_acls(admin, all_acls(prefix))} ACLs in place, one Kafka user per service")


async def wait_for_kafka(kafka: KafkaAccess, *, timeout: float) -> None:
    """Wait until the broker answers a metadata request; raise TimeoutError with the log's tail if not."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    from libs.common.kafka_security import client_kwargs

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "connection refused" until it is up
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(**client_kwargs(kafka), request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.describe_cluster()
            return
        except Exception as exc:  # noqa: BLE001 - not up yet; the deadline decides
            if time.monotonic() > deadline:
                message = f"Kafka at {kafka.bootstrap_servers} did not answer in {timeout:.0f}s: {exc}"
                raise TimeoutError(f"{message}\n{_tail('kafka')}") from None
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


def _sh(script: str) -> None:
    env = dict(os.environ, TEXTPULSE_VAR_DIR=str(VAR), TEXTPULSE_PG_PORT=str(PG_PORT), TEXTPULSE_PYTHON=PYTHON,
               TEXTPULSE_KAFKA_PORT=str(KAFKA_PORT), TEXTPULSE_KAFKA_CONTROLLER_PORT=str(KAFKA_CONTROLLER_PORT))
    subprocess.run(["bash", str(REPO / "deploy" / "local" / script)], check=True, env=env)


# ---------------------------------------------------------------------------------------------
# Processes


def start(proc: Process) -> None:
    if _alive(proc.name):
        print(f"{proc.name}: already running (pid {_read_pid(proc.name)[0]})")
        return
    LOG.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    log = open(LOG / f"{proc.name}.log", "ab")  # noqa: SIM115 - handed to the child
    args = [PYTHON, "-m", proc.module, *proc.args]
    if proc.module.startswith("standins."):
        args += ["--port", str(proc.port)]
    env = service_env(proc.port, proc.service) | dict(proc.env)
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=log,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    _write_pid(proc.name, child.pid)


def wait_ready(proc: Process, timeout: float = 60) -> None:
    path = "/healthz" if proc.module.startswith("standins.") else "/readyz"
    url = f"http://127.0.0.1:{proc.port}{path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(proc.name):
            raise RuntimeError(f"{proc.name} exited during start-up:\n{_tail(proc.name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{_tail(proc.name)}")


def up() -> None:
    infra()
    for proc in processes():
        start(proc)
    for proc in processes():
        wait_ready(proc)
        print(f"{proc.name}: ready on http://127.0.0.1:{proc.port}")


def down(names: list[str] | None = None, *, wipe: bool = False) -> None:
    """Stop what this tool started (services first, then Kafka, then PostgreSQL)."""
    order = [p.name for p in reversed(processes())] + ["kafka", "postgres"]
    for name in names if names is not None else order:
        if name == "postgres":
            _stop_postgres()
        else:
            _stop(name)
    if wipe:
        data_file = VAR / "pg" / "DATA_DIR"
        if data_file.exists():  # the data may live outside var/ (see postgres.sh)
            shutil.rmtree(data_file.read_text().strip(), ignore_errors=True)
        shutil.rmtree(VAR, ignore_errors=True)
        print(f"wiped {VAR}")


def _stop(name: str, timeout: float = 30) -> None:
    if not _alive(name):
        (RUN / f"{name}.pid").unlink(missing_ok=True)
        return
    pid, _ = _read_pid(name)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(name) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(name):
        os.kill(pid, signal.SIGKILL)
        print(f"{name}: did not stop in {timeout:.0f}s, killed")
    (RUN / f"{name}.pid").unlink(missing_ok=True)
    print(f"{name}: stopped")


def _stop_postgres() -> None:
    data_file = VAR / "pg" / "DATA_DIR"
    if not data_file.exists() or not _alive("postgres"):
        return
    data = data_file.read_text().strip()
    pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
    cmd = [str(pg_ctl), "-D", data, "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (RUN / "postgres.pid").unlink(missing_ok=True)
    print("postgres: stopped")


def _write_pid(name: str, pid: int) -> None:
    (RUN / f"{name}.pid").write_text(f"{pid} {_start_time(pid)}\n")


def _read_pid(name: str) -> tuple[int, str | None]:
    parts = (RUN / f"{name}.pid").read_text().split()
    return int(parts[0]), parts[1] if len(parts) > 1 else None


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks since boot


def _alive(name: str) -> bool:
    """True if the recorded process is running and is the one we started (same start time)."""
    try:
        pid, started = _read_pid(name)
    except (OSError, ValueError, IndexError):
        return False
    now = _start_time(pid)
    if now is None:
        return False
    if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return started is None or started == now


def _tail(name: str, lines: int = 30) -> str:
    path = LOG / f"{name}.log"
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def status() -> None:
    for name in ["postgres", "kafka", *[p.name for p in processes()]]:
        state = f"running (pid {_read_pid(name)[0]})" if _alive(name) else "stopped"
        print(f"{name:16} {state}")


def run_tests(pytest_args: list[str]) -> int:
    from tests import infra_containers

    mode = choose_test_infra(os.environ.get("TEXTPULSE_TEST_INFRA"), infra_containers.docker_engine_answers)
    if mode == "containers":
        return _run_tests_in_containers(pytest_args)
    started = infra()
    try:
        return _pytest(pytest_args)
    finally:
        if started:
            down(started)


def _run_tests_in_containers(pytest_args: list[str]) -> int:
    """PostgreSQL and Kafka in containers for this session (addresses given in the environment still win)."""
    from tests import infra_containers

    with infra_containers.started(postgres=not database_given(), kafka=not kafka_given()) as containers:
        if containers.database_url:
            os.environ["TEXTPULSE_DATABASE_URL"] = containers.database_url
        if containers.kafka_bootstrap:
            os.environ["TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS"] = containers.kafka_bootstrap
        print(f"containers: PostgreSQL at {database_url()}, Kafka at {bootstrap_servers()}")
        asyncio.run(_prepare())
        return _pytest(pytest_args)


def _pytest(pytest_args: list[str]) -> int:
    env = dict(os.environ, TEXTPULSE_TEST_DATABASE_URL=database_url(),
               TEXTPULSE_TEST_KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers())
    return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=REPO, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("infra")
    sub.add_parser("up")
    sub.add_parser("demo", help="up, then the demo's organisations and a campaign sending live")
    sub.add_parser("status")
    stop = sub.add_parser("down")
    stop.add_argument("--wipe", action="store_true", help="also delete the data in var/")
    sub.add_parser("test", help="start PostgreSQL and Kafka, run pytest with the remaining arguments")
    args, rest = parser.parse_known_args()
    if rest and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.command == "infra":
        infra()
    elif args.command == "up":
        up()
        print(f"\nTextpulse is running. Dashboard: http://127.0.0.1:{PORT_BASE}/\nStop it with: make stop")
    elif args.command == "demo":
        up()
        from deploy import demo

        sign_ins = demo.run(database_url(), f"http://127.0.0.1:{PORT_BASE}", f"http://127.0.0.1:{PORT_BASE + 1}")
        print(f"\nTextpulse is running. Dashboard: http://127.0.0.1:{PORT_BASE}/")
        print("Sign in as:")
        for email, password in sign_ins:
            print(f"  {email:36} password: {password}")
        print(f"Sending now at 3 segments/s, on Home: '{demo.QUICK.name}' (about 3 minutes) and "
              f"'{demo.LONG.name}' (20 minutes or more, on its own sender).")
        print(f"Alert e-mails go to a local SMTP catcher: Outbox (demo) in the dashboard, or the .eml files in "
              f"{OUTBOX}")
        print("Stop it with: make stop (data stays in var/; make wipe deletes it)")
    elif args.command == "down":
        down(wipe=args.wipe)
    elif args.command == "status":
        status()
    elif args.command == "test":
        sys.exit(run_tests(rest))


if __name__ == "__main__":
    main()
