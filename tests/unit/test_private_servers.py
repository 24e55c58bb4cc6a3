"""Private servers' ports and var dirs: chosen per run, fixed by the environment, swept when a run died."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.private_servers import PRIVATE_PORTS, RunDir, private_port, running, server_port, sweep_abandoned


def test_a_port_not_given_is_free_new_to_the_run_and_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEXTPULSE_TEST_SOME_PORT", raising=False)
    ports = [server_port("TEXTPULSE_TEST_SOME_PORT") for _ in range(3)]
    assert len(set(ports)) == 3 and all(p in PRIVATE_PORTS for p in ports)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert PRIVATE_PORTS.stop <= low  # never one the kernel hands out while a server is down
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # raises if it were taken


def test_two_runs_start_in_different_blocks_and_a_taken_port_is_skipped() -> None:
    first, second = private_port(pid=1000), private_port(pid=1001)
    assert abs(second - first) >= 8
    with socket.socket() as holder:
        port = private_port(pid=2000)
        holder.bind(("127.0.0.1", port + 1))  # the next one in that run's block is in use
        assert private_port(pid=2000) not in (port, port + 1)


def test_a_port_given_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_TEST_SOME_PORT", "56401")
    assert server_port("TEXTPULSE_TEST_SOME_PORT") == 56401


def test_a_port_that_is_not_a_number_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_TEST_SOME_PORT", "fifty")
    with pytest.raises(ValueError, match="TEXTPULSE_TEST_SOME_PORT='fifty': a port number"):
        server_port("TEXTPULSE_TEST_SOME_PORT")


def test_each_run_dir_is_new_and_removed_with_what_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTPULSE_TEST_SOME_VAR", raising=False)
    first = RunDir.create("pg", "TEXTPULSE_TEST_SOME_VAR", runs=tmp_path)
    second = RunDir.create("pg", "TEXTPULSE_TEST_SOME_VAR", runs=tmp_path)
    assert first.owned and first.path != second.path and first.path.parent == tmp_path
    outside = tmp_path / "elsewhere" / "data"  # postgres.sh keeps the data outside when it must
    outside.mkdir(parents=True)
    (first.path / "pg").mkdir()
    (first.path / "pg" / "DATA_DIR").write_text(f"{outside}\n")
    first.remove()
    assert not first.path.exists() and not outside.exists() and second.path.exists()


def test_a_run_dir_given_in_the_environment_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_TEST_SOME_VAR", str(tmp_path / "mine"))
    given = RunDir.create("pg", "TEXTPULSE_TEST_SOME_VAR", runs=tmp_path / "runs")
    given.path.mkdir()
    given.remove()
    assert not given.owned and given.path.exists()


def test_the_dir_of_a_dead_run_is_swept_with_its_broker_and_a_live_runs_is_not(tmp_path: Path) -> None:
    dead_pid = _exited_pid()
    broker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "kafka.Kafka"])
    try:
        abandoned = tmp_path / f"sasl-{dead_pid}-abc123"
        (abandoned / "run").mkdir(parents=True)
        (abandoned / "run" / "kafka.pid").write_text(str(broker.pid))
        live = tmp_path / f"chaos-{broker.pid}-def456"  # its run (here: the "broker") is still running
        live.mkdir()
        assert sweep_abandoned(tmp_path) == [abandoned]
        assert broker.wait(timeout=60) == -9
        assert not abandoned.exists() and live.exists()
    finally:
        broker.kill()
        broker.wait()


def _exited_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert not running(done.pid)
    return done.pid
