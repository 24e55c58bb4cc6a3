"""The CPU cost of the dispatcher's metrics per message, and of one scrape. Prints its figures.

    python -m bench.metrics_cost

Per message the dispatcher does what this loop does: two ``perf_counter`` pairs, the ledger-claim and the
Twilio-call histograms, the texts counter and the segments counter of its sender (``libs/common/metrics.py``).
It runs here alone, in one process, so its cost is measured without the noise of a whole dispatch
(``bench.dispatch throughput`` gives that, before and after, as CPU-ms per message). A scrape is timed with
every sender's series present. Needs neither PostgreSQL nor Kafka.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.report import result
from libs.common import metrics


def one_message(sender: str) -> None:
    claiming = time.perf_counter()
    metrics.LEDGER_CLAIM_SECONDS.observe(time.perf_counter() - claiming)
    calling = time.perf_counter()
    metrics.TWILIO_CALL_SECONDS.labels("accepted").observe(time.perf_counter() - calling)
    metrics.count_text("sent", None, sender=sender, segments=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    senders = [f"+1888555{3000 + i:04d}" for i in range(args.senders)]
    for sender in senders:  # every series exists before timing, as in a dispatcher that has run a while
        one_message(sender)

    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(args.messages):
        one_message(senders[index % len(senders)])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per_message_us = cpu / args.messages * 1e6

    scrape_cpu = time.process_time()
    size = 0
    for _ in range(args.scrapes):
        size = len(metrics.exposition())
    scrape_ms = (time.process_time() - scrape_cpu) / args.scrapes * 1000

    load = os.getloadavg()
    print(f"bench.metrics_cost: {args.messages:,} messages over {args.senders} senders; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"  instrumentation per message: {per_message_us:.2f} CPU-us ({wall / args.messages * 1e6:.2f} us wall)")
    print(f"  one scrape of {size:,} bytes: {scrape_ms:.2f} CPU-ms")
    result("Metrics: dispatcher instrumentation per message", "-", f"{per_message_us:.2f} CPU-us")
    result(f"Metrics: one scrape with {args.senders} senders' series", "-", f"{scrape_ms:.2f} CPU-ms")


if __name__ == "__main__":
    main()
