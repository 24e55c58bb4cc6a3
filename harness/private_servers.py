"""Ports and data directories for the private servers (PostgreSQL, Kafka) a test or benchmark run starts.

Two suites on one machine (CI and a developer, or two checkouts) must never meet, so nothing is fixed: each
port is chosen free when the run starts (``server_port``) and each server's data lives in a directory of the
run's own, ``var/runs/<name>-<pid>-<random>/`` (``RunDir``), removed when the run is done with it. An
environment variable still fixes either; a directory given that way is the caller's and is kept.

These servers are restarted on the same ports, so their ports are not the kernel's (bind to port 0): those
come from the ephemeral range, which every outgoing connection and every other test's free port draw from,
and one released while its server is down may be taken by anyone. They are taken from ``PRIVATE_PORTS``,
below that range, starting at a block derived from the run's pid (two runs start apart) and skipping any
port in use.

A run killed before it cleaned up leaves its directory behind, perhaps with its servers still running: the
next ``RunDir.create`` stops those (the directory's pid is gone) and removes the directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import VAR

RUNS = VAR / "runs"
PRIVATE_PORTS = range(11000, 19000)  # below Linux's default ephemeral range (32768-60999)
_BLOCK = 8  # ports a run takes from its own block before it moves on to the next
_SHARED_PORTS = frozenset({19092, 19093})  # the shared Kafka's, should PRIVATE_PORTS ever reach them
_handed_out: set[int] = set()


def server_port(env_var: str) -> int:
    """The port ``env_var`` names, or one of ``PRIVATE_PORTS`` free now and not handed out before in this run."""
    given = os.environ.get(env_var)
    if not given:
        return private_port()
    try:
        return int(given)
    except ValueError:
        raise ValueError(f"{env_var}={given!r}: a port number") from None


def private_port(pid: int | None = None) -> int:
    span = len(PRIVATE_PORTS)
    start = ((os.getpid() if pid is None else pid) % (span // _BLOCK)) * _BLOCK
    for offset in range(span):
        port = PRIVATE_PORTS[(start + offset) % span]
        if port not in _handed_out and port not in _SHARED_PORTS and _free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port for a private server in {PRIVATE_PORTS.start}-{PRIVATE_PORTS.stop - 1}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class RunDir:
    """A private server's var dir: ``owned`` when this run made it (and removes it)."""

    path: Path
    owned: bool

    @classmethod
    def create(cls, name: str, env_var: str, *, runs: Path = RUNS) -> RunDir:
        given = os.environ.get(env_var)
        if given:
            return cls(Path(given), owned=False)
        sweep_abandoned(runs)
        path = runs / f"{name}-{os.getpid()}-{secrets.token_hex(3)}"
        path.mkdir(parents=True)
        return cls(path, owned=True)

    def remove(self) -> None:
        """Delete the directory and any data kept outside it; the caller has stopped its servers."""
        if self.owned:
            remove_tree(self.path)


def remove_tree(path: Path) -> None:
    data_file = path / "pg" / "DATA_DIR"  # deploy/local/postgres.sh may keep the data elsewhere
    if data_file.exists():
        data = Path(data_file.read_text().strip())
        if path not in data.parents:
            shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def sweep_abandoned(runs: Path = RUNS) -> list[Path]:
    """Stop the servers of run directories whose run has ended, and remove them; returns those removed."""
    removed = []
    for path in sorted(runs.glob("*-*-*")):
        try:
            pid = int(path.name.rsplit("-", 2)[1])
        except ValueError:
            continue
        if running(pid):
            continue
        stop_servers(path)
        remove_tree(path)
        removed.append(path)
    return removed


def stop_servers(path: Path) -> None:
    """kill -9 a broker and stop a PostgreSQL (immediate shutdown, SIGQUIT) running from ``path``."""
    kafka = _pid_from(path / "run" / "kafka.pid")
    if kafka is not None and b"kafka.Kafka" in _cmdline(kafka):
        os.kill(kafka, signal.SIGKILL)
        _wait_gone(kafka)
    data_file = path / "pg" / "DATA_DIR"
    if data_file.exists():
        postmaster = _pid_from(Path(data_file.read_text().strip()) / "postmaster.pid")
        if postmaster is not None and b"postgres" in _cmdline(postmaster):
            os.kill(postmaster, signal.SIGQUIT)
            _wait_gone(postmaster)


def running(pid: int) -> bool:
    """Whether ``pid`` still runs. A zombie has ended only once its last thread has: a killed JVM's main
    thread shows Z while its other threads, and the ports they listen on, are still going."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" or len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return False


def _pid_from(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if running(pid) else None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_gone(pid: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
