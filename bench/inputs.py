"""How fast the test inputs are made and read: the iMIS stand-in's full member set, and a 200,000-row CSV.

    python -m bench.inputs

Targets: the stand-in generates its full set in under 8 s (it is built at start-up); the CSV parser reads
200,000 rows in under 10 s. Printed as ``RESULT`` lines, never asserted; the tests check only what comes out.
"""

from __future__ import annotations

import time

from bench.report import result
from libs.common.csv_audience import parse_csv
from standins.members.dataset import FULL_SIZE, generate


def csv_of(rows: int) -> bytes:
    lines = ["Member ID,Mobile,First Name,Last Name,Chapter"]
    lines += [f'{100000 + i},({200 + i % 700}) 555-{i % 10000:04d},Zoë,"Smith, Jr",NE' for i in range(rows)]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def main() -> None:
    started = time.perf_counter()
    members = generate(count=FULL_SIZE)
    generated = time.perf_counter() - started
    data = csv_of(200_000)
    started = time.perf_counter()
    parsed = parse_csv(data)
    parse_seconds = time.perf_counter() - started
    print(f"  generated {len(members):,} stand-in members in {generated:.2f} s; "
          f"parsed {len(parsed.rows):,} CSV rows ({len(data) / 1e6:.1f} MB) in {parse_seconds:.2f} s")
    result(f"Inputs: iMIS stand-in's {len(members):,} members generated", "< 8 s", f"{generated:.2f} s")
    result("Inputs: a 200,000-row CSV parsed", "< 10 s", f"{parse_seconds:.2f} s")


if __name__ == "__main__":
    main()
