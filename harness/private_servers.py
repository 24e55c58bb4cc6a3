"""Ports and data directories for the private servers (PostgreSQL, Kafka) a test or benchmark run starts.

Two suites on one machine (CI and a developer, or two checkouts) must never meet, so nothing is fixed: each
port is chosen free when the run starts (``server_port``) and each server's data lives in a directory of the
run's own, ``var/runs/<name>-<pid>-<random>/`` (``RunDir``), removed when the run is done with it. An
environment variable still fixes either; a directory given that way is the caller's and is kept.

A run killed before it cleaned up leaves its directory behind, perhaps with its servers still running: the
next ``RunDir.create`` stops those (the directory's pid is gone) and removes the directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import VAR
from harness.processes import free_port

RUNS = VAR / "runs"


def server_port(env_var: str) -> int:
    """The port ``env_var`` names, or one free now."""
    given = os.environ.get(env_var)
    if not given:
        return free_port()
    try:
        return int(given)
    except ValueError:
        raise ValueError(f"{env_var}={given!r}: a port number") from None


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
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
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
