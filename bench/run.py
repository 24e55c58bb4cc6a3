"""``make bench`` / ``python -m bench.run``: run every benchmark of the project and write one report.

Each benchmark prints its own figures against its target; this runs them one after the other (they
share the machine's two cores, so never in parallel), with PostgreSQL and Kafka started as for the
tests, and collects what they printed into ``var/bench-report.md`` with the machine and the time.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime

from deploy.stack import REPO, VAR, down, infra

BENCHMARKS: list[tuple[str, list[str]]] = [
    ("Message preflight, 100,000 members", ["bench.preflight"]),
    ("Dispatcher pacing, 40 senders x 180 segments", ["bench.dispatch", "pacing"]),
    ("Dispatcher throughput, one process", ["bench.dispatch", "throughput"]),
    ("Audience, a 100,000-row IQA", ["bench.audience"]),
    ("Opt-out webhooks at a fixed rate", ["bench.webhooks"]),
    ("Home page latency", ["bench.home"]),
    ("Twilio stand-in create rate", ["bench.standin_twilio"]),
]


def main() -> None:
    started = infra()
    lines = [f"# Textpulse benchmark report, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}", ""]
    failures = 0
    try:
        for title, args in BENCHMARKS:
            print(f"== {title}: python -m {' '.join(args)}", flush=True)
            began = time.monotonic()
            result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                                    timeout=1800)
            output = (result.stdout + ("\n" + result.stderr if result.returncode else "")).strip()
            print(output, flush=True)
            failures += result.returncode != 0
            status = "" if result.returncode == 0 else f" (exit code {result.returncode})"
            lines += [f"## {title}{status}", "", f"`python -m {' '.join(args)}`, "
                      f"{time.monotonic() - began:.0f} s", "", "```", output[-6000:], "```", ""]
    finally:
        if started:
            down(started)
    report = VAR / "bench-report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines))
    print(f"\nreport: {report}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
