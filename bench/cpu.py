"""CPU seconds per process of a benchmark's work, read from /proc: load-independent figures on a shared machine.

    before = cpu_by_role({service.pid: "service", standin.pid: "iMIS stand-in"}, database="textpulse_bench_ab12")
    ...
    used = cpu_used(before, cpu_by_role({...}, database=...))   # {"service": 41.2, "PostgreSQL": 18.0, ...}

PostgreSQL counts the backends connected to the benchmark's own database and the server's shared workers
(WAL writer, checkpointer...), not other databases' backends. Kafka is the whole broker process, so on a
machine others use it is an upper bound of the benchmark's share; :func:`background_rates` measures what
the shared processes burn before the benchmark starts, for :func:`net_of_background` to take off.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

POSTGRES, KAFKA = "PostgreSQL", "Kafka"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_by_role(roles: dict[int, str], *, database: str) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process in ``roles`` (pid -> role), of PostgreSQL's processes serving
    ``database`` (and its shared workers) and of the Kafka broker, each with its role."""
    found = {pid: (role, cpu_seconds(pid)) for pid, role in roles.items()}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres") and (database.encode() in command or b"(" not in command):
            found[int(proc.name)] = (POSTGRES, cpu_seconds(int(proc.name)))
        elif b"kafka.Kafka" in command:
            found[int(proc.name)] = (KAFKA, cpu_seconds(int(proc.name)))
    return found


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per role between two readings; a process new since ``before`` counts from zero."""
    used = {role: 0.0 for role, _ in [*before.values(), *after.values()]}
    for pid, (role, seconds) in after.items():
        used[role] += seconds - before.get(pid, (role, 0.0))[1]
    return used


async def background_rates(roles: dict[int, str], *, database: str, seconds: float = 5.0) -> dict[str, float]:
    """CPU seconds per second of each role while the benchmark does nothing yet (others' work on the
    shared PostgreSQL server and Kafka broker)."""
    before = cpu_by_role(roles, database=database)
    await asyncio.sleep(seconds)
    return {role: used / seconds for role, used in cpu_used(before, cpu_by_role(roles, database=database)).items()}


def net_of_background(used: dict[str, float], rates: dict[str, float], seconds: float) -> dict[str, float]:
    """``used`` less what the shared processes burnt anyway over ``seconds`` (never below zero)."""
    return {role: max(0.0, cpu - rates.get(role, 0.0) * seconds) if role in (POSTGRES, KAFKA) else cpu
            for role, cpu in used.items()}
