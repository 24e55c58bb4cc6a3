"""Preflight 100,000 synthetic members in one thread (one core) and print the throughput.

    python -m bench.preflight [--members 100000] [--seed 7]

Targets (issue 5): at least 100,000 members/s for render + segment count, and the whole preflight
(phone normalisation + render + segments + dedupe + estimate) under 3 s. Printed, never asserted; the
``RESULT`` lines carry them to ``python -m bench.run``'s table.

The audience is built to look like a membership list, not to flatter the code: mostly US numbers
written every which way, some Canadian and overseas ones, a few per cent malformed, 2 % of members
listed twice with the number formatted differently; names with accents, some of which force UCS-2,
some blank (fallback), some long (max=12); a body near the 160-character boundary, so some members
need two segments. The phone cache starts cold.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping

from bench.report import result
from libs.common import phone
from libs.common.merge import compile_template
from libs.common.preflight import preflight_members
from libs.common.segments import count_segments

BODY = (
    "Hi {{first_name|Member|max=12}}, your {{chapter|chapter}} membership renews on Tuesday 1 July. "
    "Renew online in under two minutes: https://mbr.example.org/r/{{member_id}} Reply STOP to opt out."
)
FIRST_NAMES = (
    ["Ann", "Bob", "Carlos", "Dana", "Emily", "Frank", "Grace", "Hiro", "Ivan", "Jun", "Kate", "Liam"] * 8
    + ["José", "Søren", "Björn", "Øyvind", "Renée"] * 2  # accented but GSM-7
    + ["Zoë", "Siobhán", "François", "Chloë"]  # force UCS-2
    + ["", "  ", "Alexandria-Catherine", "Maximilian-Alexander"]  # fallback; over max=12
)
CHAPTERS = ["Boston", "Chicago", "Leeds", "Toronto", "Greater Los Angeles", "Twin Cities", ""]
AREA_CODES = [202, 206, 212, 213, 305, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 718, 720, 801, 919]
CA_AREA_CODES = [416, 514, 604, 613]


def synthetic_members(count: int, seed: int) -> list[tuple[str, str | None, Mapping[str, object]]]:
    """``count`` members as ``(member_id, raw_phone, values)``, deterministic for ``seed``."""
    rng = random.Random(seed)
    members: list[tuple[str, str | None, Mapping[str, object]]] = []
    while len(members) < count:
        member_id = str(100000 + len(members))
        values = {"first_name": rng.choice(FIRST_NAMES), "chapter": rng.choice(CHAPTERS), "member_id": member_id}
        raw = _phone(rng)
        members.append((member_id, raw, values))
        if rng.random() < 0.02 and len(members) < count:  # the same person again, number written differently
            digits = "".join(char for char in raw or "" if char.isdigit())
            again = "+" + digits if (raw or "").startswith("+") else digits
            members.append((str(100000 + len(members)), again, values))
    return members


def _phone(rng: random.Random) -> str | None:
    roll = rng.random()
    line = f"{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
    if roll < 0.88:
        npa = rng.choice(AREA_CODES)
        shape = rng.choice(["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1{a}{b}{c}", "{a}{b}{c}"])
        return shape.format(a=npa, b=line[:3], c=line[3:])
    if roll < 0.93:
        return f"+1 {rng.choice(CA_AREA_CODES)} {line[:3]} {line[3:]}"
    if roll < 0.97:
        return rng.choice(["+44 7400 {0}", "+61 412 {0}", "+353 85 {1}", "+49 1512 {1}"]).format(line[:6], line)
    return rng.choice([None, "", "555-1234", f"{line} ext. 12", "1-800-FLOWERS", "12345", "(123) 555-0100"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    members = synthetic_members(args.members, args.seed)
    template = compile_template(BODY)

    started = time.perf_counter()
    encodings: Counter[tuple[str, int]] = Counter()
    for _, _, values in members:
        count = count_segments(template.render(values))
        encodings[count.encoding, count.segments] += 1
    render_seconds = time.perf_counter() - started

    phone._normalise.cache_clear()  # cold: the whole-preflight figure pays for every parse
    started = time.perf_counter()
    report = preflight_members(template, members)
    whole_seconds = time.perf_counter() - started

    reasons = Counter(member.reason for member in report.rejected)
    out = sys.stdout.write
    out(f"members                      {len(members):>10,}\n")
    out(f"render + segments            {render_seconds:>10.3f} s  {len(members) / render_seconds:>12,.0f} members/s\n")
    out(f"whole preflight (cold cache) {whole_seconds:>10.3f} s  {len(members) / whole_seconds:>12,.0f} members/s\n")
    out(f"  sendable {len(report.sendable):,}  duplicates {len(report.duplicates):,}  ")
    out(f"rejected {len(report.rejected):,}\n")
    out(f"  encodings x segments {dict(sorted(encodings.items()))}\n")
    out(f"  rejections {dict(reasons.most_common())}\n")
    estimate = report.estimate
    out(f"  estimate ${estimate.total} for {estimate.segments:,} segments; ")
    out(f"unpriced {estimate.unpriced_regions}; pumping protection may apply {estimate.pumping_protection_regions}\n")
    sys.stdout.flush()
    result(f"Preflight: render + segments, {len(members):,} members", ">= 100,000 members/s",
           f"{len(members) / render_seconds:,.0f} members/s")
    result(f"Preflight: whole, {len(members):,} members, cold phone cache", "< 3 s",
           f"{whole_seconds:.2f} s ({len(members) / whole_seconds:,.0f} members/s)")


if __name__ == "__main__":
    main()
