"""``make bench`` / ``python -m bench.run [name ...]``: run the project's benchmarks and write one report.

Each benchmark prints its figures against their targets, one ``RESULT`` line per figure (see
``bench/report.py``). This runs them one after the other (they share the machine's cores, so never in
parallel), with PostgreSQL and Kafka started as for the tests, and renders one Markdown table of every
figure, with the machine's facts and each benchmark's raw output below it:

- with no names, every benchmark runs (about 45 minutes: 12 of them the soak, 15 the usage streams) and the report is
  written to ``bench/RESULTS.md`` (committed: the project's measured figures) and ``var/bench-report.md``;
- with names (``python -m bench.run soak home``; ``--list`` shows them, ``dispatch`` selects both of its
  runs), only those run and only ``var/bench-report.md`` is written: a partial run never replaces the
  committed figures.

Exits 1 when a benchmark failed (its row in the table says so); a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from bench.report import BenchRun, render_report
from deploy.stack import REPO, VAR, bootstrap_servers, database_url, down, infra

RESULTS = REPO / "bench" / "RESULTS.md"
REPORT = VAR / "bench-report.md"
TIMEOUT = 1800  # seconds per benchmark; the soak needs about 750, the usage streams about 900


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    args: tuple[str, ...]

    @property
    def command(self) -> str:
        return "python -m " + " ".join(self.args)


BENCHMARKS = [
    Benchmark("preflight", "Message preflight, 100,000 members", ("bench.preflight",)),
    Benchmark("dispatch-pacing", "Dispatcher pacing, 40 senders x 180 segments", ("bench.dispatch", "pacing")),
    Benchmark("dispatch-throughput", "Dispatcher throughput, one process", ("bench.dispatch", "throughput")),
    Benchmark("dispatch-capped", "Dispatcher throughput with a marketing cap (the checks' cost)",
              ("bench.dispatch", "throughput", "--marketing-cap")),
    Benchmark("metrics", "Metrics: the dispatcher's instrumentation and a scrape", ("bench.metrics_cost",)),
    Benchmark("dispatch-pause", "Dispatcher: a paused run stops, five pauses", ("bench.dispatch_pause",)),
    Benchmark("scale-senders", "Scale: 600 senders at 3 segments/s, 1, 2 and 4 dispatchers",
              ("bench.scale", "senders")),
    Benchmark("scale-fast", "Scale: one sender at 150 segments/s", ("bench.scale", "fast")),
    Benchmark("audience", "Audience, a 100,000-row IQA", ("bench.audience",)),
    Benchmark("audience-service", "Audience service process, 10,000 to 1,000,000-member IQAs",
              ("bench.audience_service",)),
    Benchmark("webhooks", "Opt-out webhooks at a fixed rate", ("bench.webhooks",)),
    Benchmark("revocations", "Revocation reader, 200,000 member replies", ("bench.revocations",)),
    Benchmark("imis-writeback", "iMIS write-back lanes, 20 organisations beside a slow iMIS",
              ("bench.imis_writeback",)),
    Benchmark("links", "Tracked short links: redirects at a fixed rate, one process", ("bench.links",)),
    Benchmark("home", "Home page latency", ("bench.home",)),
    Benchmark("funnel", "A 100,000-recipient run's funnel and CSV export", ("bench.funnel",)),
    Benchmark("hostile-bodies", "Hostile bodies: API memory under a 300 MB body and 64 MB CSVs",
              ("bench.hostile_bodies",)),
    Benchmark("sign-in", "Sign-in during a flood of anonymous attempts", ("bench.sign_in",)),
    Benchmark("inputs", "Test inputs: the stand-in's members generated, a 200,000-row CSV parsed", ("bench.inputs",)),
    Benchmark("standin-twilio", "Twilio stand-in create rate", ("bench.standin_twilio",)),
    Benchmark("usage-streams", "Usage rollups: the usage service against faust-streaming agents, 10,000 events",
              ("bench.usage_streams", "--events", "10000")),
    Benchmark("soak", "Soak: 20,000 segments on 10 senders, two dispatchers", ("bench.soak",)),
]


def select(names: list[str]) -> list[Benchmark]:
    """The benchmarks named (by name, or by module: ``dispatch``), in the report's order; all when none."""
    if not names:
        return list(BENCHMARKS)
    unknown = [n for n in names if not any(_matches(b, n) for b in BENCHMARKS)]
    if unknown:
        raise SystemExit(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(b.name for b in BENCHMARKS)}")
    return [b for b in BENCHMARKS if any(_matches(b, n) for n in names)]


def _matches(bench: Benchmark, name: str) -> bool:
    return name in (bench.name, bench.args[0], bench.args[0].removeprefix("bench."))


def run_one(bench: Benchmark, timeout: float = TIMEOUT) -> BenchRun:
    """Run one benchmark in its own process group, echoing its output; stderr is kept only if it fails.

    When the benchmark exits, whatever it started and left behind (after a crash) is stopped too; on
    timeout the whole group is killed.
    """
    began = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", *bench.args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, start_new_session=True)
        lines: list[str] = []
        # A thread reads, because a child that inherited the pipe could hold it open after the benchmark exits.
        reader = threading.Thread(target=_echo, args=(proc.stdout, lines), daemon=True)
        reader.start()
        timed_out = threading.Event()

        def kill_group() -> None:
            timed_out.set()
            _signal_group(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, kill_group)
        watchdog.start()
        # Exited but not reaped, so its pid (the group's id) is not reused while the group is signalled.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        watchdog.cancel()
        _signal_group(proc.pid, signal.SIGTERM)
        reader.join(timeout=20)
        if reader.is_alive():
            _signal_group(proc.pid, signal.SIGKILL)
            reader.join()
        returncode = proc.wait()
        output = "".join(lines)
        if returncode:
            stderr.seek(0)
            errors = stderr.read().strip()[-6000:]
            print(errors, flush=True)
            output = (output + "\n" + errors).strip()
    return BenchRun(bench.title, bench.command, None if timed_out.is_set() else returncode,
                    time.monotonic() - began, output)


def _echo(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        print(line, end="", flush=True)
        lines.append(line)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:  # the group is empty: everything in it has exited
        pass


def machine_facts(load_at_start: float) -> list[tuple[str, str]]:
    """What is cheaply knowable about the machine and the infrastructure the figures were measured on."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    meminfo = _read("/proc/meminfo")
    ram_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    release = _read("/etc/os-release")
    os_name = next((line.split("=", 1)[1].strip('"') for line in release.splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    return [
        ("CPU", f"{model}, {os.cpu_count()} cores"),
        ("RAM", f"{ram_kb / 1024 / 1024:.1f} GiB"),
        ("OS", f"{os_name}, Linux {platform.release()}"),
        ("Python", platform.python_version()),
        ("PostgreSQL", _postgres_version()),
        ("Kafka", _kafka_version()),
        ("Load average (1 min)", f"{load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
                                 "(the machine may be shared; the benchmarks ran one at a time)"),
    ]


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _postgres_version() -> str:
    import asyncpg

    async def version() -> str:
        conn = await asyncpg.connect(database_url())
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        return asyncio.run(version())
    except (OSError, asyncpg.PostgresError) as exc:
        return f"unknown ({type(exc).__name__})"


def _kafka_version() -> str:
    """Apache Kafka's version from the broker's jars when deploy/local/kafka.sh runs it; else where it is."""
    jars = sorted((VAR / "kafka" / "libs").glob("kafka-server-[0-9]*.jar"))
    if jars and not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS")):
        return "Apache Kafka " + jars[-1].stem.removeprefix("kafka-server-") + " (KRaft, one broker)"
    return f"external, at {bootstrap_servers()}"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all, and bench/RESULTS.md is written)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<20} {b.command:<36} {b.title}")
        return
    chosen = select(args.names)
    complete = len(chosen) == len(BENCHMARKS)
    load_at_start = os.getloadavg()[0]
    when = datetime.now(UTC)
    started = infra()
    runs = []
    try:
        for bench in chosen:
            print(f"== {bench.title}: {bench.command}", flush=True)
            runs.append(run_one(bench))
        facts = machine_facts(load_at_start)
    finally:
        if started:
            down(started)
    took = _duration(sum(r.seconds for r in runs))
    preamble = (f"Measured {when:%Y-%m-%d %H:%M} UTC at commit {_commit()} by `python -m bench.run` "
                f"(`make bench`): {len(runs)} benchmark{'s' if len(runs) != 1 else ''}, one after the other, "
                f"{took} in all.")
    heading = "Textpulse benchmark results" if complete else "Textpulse benchmark report (a subset)"
    document = render_report(runs, heading=heading, preamble=preamble, facts=facts) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(document)
    written = [REPORT]
    if complete:
        RESULTS.write_text(document)
        written.append(RESULTS)
    print(f"\nreport: {', '.join(str(p) for p in written)}")
    sys.exit(1 if any(r.failure is not None for r in runs) else 0)


if __name__ == "__main__":
    main()
