"""The chaos suite's verdicts. Each check returns the problems it found, worded for the person reading a
failure (which numbers, which sender and second, which counter); an empty list means it holds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.processes import Process
from libs.common.twilio_facts import UNSUBSCRIBED_ERROR
from tests.chaos.observe import USAGE_COUNTERS, Observed
from tests.chaos.seeding import EXCLUDED, ChaosOrg
from tests.chaos.stops import Stop

FINAL_LEDGER_STATES = {"sent", "suppressed"}  # no member fails in this run: faults are all retryable


def exactly_once(org: ChaosOrg, obs: Observed, stops: list[Stop]) -> list[str]:
    """1. Every eligible member who did not reply STOP got exactly one text, from their campaign's sender."""
    problems = []
    stopped = {s.phone for s in stops}
    for campaign in org.campaigns:
        want = Counter({"queued": len(campaign.members)}) + Counter(EXCLUDED)
        if obs.snapshot.get(campaign.run_id) != want:
            problems.append(f"{campaign.sender}: the audience snapshot is {dict(obs.snapshot.get(campaign.run_id, {}))}"
                            f", expected {dict(want)}")
        twice = {m.phone: len(obs.texts[m.phone]) for m in campaign.members if len(obs.texts.get(m.phone, [])) > 1}
        never = [m.phone for m in campaign.members if m.phone not in stopped and not obs.texts.get(m.phone)]
        wrong = {m.phone: obs.texts[m.phone][0]["sender"] for m in campaign.members
                 if obs.texts.get(m.phone) and obs.texts[m.phone][0]["sender"] != campaign.sender}
        if twice:
            problems.append(f"{campaign.sender}: members texted more than once: {twice}")
        if never:
            problems.append(f"{campaign.sender}: {len(never)} eligible members got no text: {never[:20]}")
        if wrong:
            problems.append(f"{campaign.sender}: members texted from another sender: {wrong}")
    members = {m.phone for c in org.campaigns for m in c.members}
    strangers = sorted(set(obs.texts) - members)
    if strangers:
        problems.append(f"texts to numbers that were not eligible (suppressed before the run: "
                        f"{sorted(org.never_texted & set(strangers))}): {strangers[:20]}")
    return problems


def stop_timing(obs: Observed, stops: list[Stop]) -> tuple[list[str], Counter[str]]:
    """2. A member whose suppression was committed before their ledger claim got nothing, and Textpulse (not
    Twilio's own block) stopped it; one texted before replying got exactly that one text; anyone between
    got at most one, and the ledger says which."""
    problems = []
    kinds: Counter[str] = Counter()
    ledger = {(r["run_id"], r["to_number"]): r for r in obs.ledger}
    for stop in stops:
        texts = obs.texts.get(stop.phone, [])
        row = ledger.get((stop.run_id, stop.phone))
        who = f"{stop.phone} (STOP at {stop.replied_at:.3f}, suppression seen {stop.suppressed_by})"
        if stop.suppressed_by is None:
            problems.append(f"{who}: the opt-out service never suppressed the number (its webhook got {stop.webhook})")
            continue
        if row is None:
            problems.append(f"{who}: no ledger row")
            continue
        sids = [t["sid"] for t in texts]
        if len(texts) > 1:
            problems.append(f"{who}: texted {len(texts)} times: {sids}")
        if stop.suppressed_by < row["claimed_at"]:
            kinds["suppressed_before_claim"] += 1
            if texts or row["state"] != "suppressed" or row["error_code"] is not None:
                problems.append(f"{who}: suppressed before its claim at {row['claimed_at']:.3f}, yet texted {sids}, "
                                f"ledger {row['state']} (error {row['error_code']}; a code means Twilio refused it)")
        elif texts and texts[0]["accepted_at"] < stop.replied_at:
            kinds["texted_before_stop"] += 1
            if row["state"] != "sent" or row["message_sid"] != texts[0]["sid"]:
                problems.append(f"{who}: texted before the STOP ({sids}), ledger {row['state']} {row['message_sid']}")
        else:
            kinds["in_flight"] += 1
            if (row["state"] == "sent") != bool(texts) or row["state"] not in FINAL_LEDGER_STATES:
                problems.append(f"{who}: STOP crossed its send: texts {sids}, ledger {row['state']}")
    for kind in ("suppressed_before_claim", "texted_before_stop"):
        if not kinds[kind]:
            problems.append(f"no STOP fell in the case {kind!r} ({dict(kinds)}): the suite did not test it")
    return problems, kinds


def sliding_window_peaks(obs: Observed, limit: float) -> list[str]:
    """3. No sender had more than ``limit`` segments arrive at the stand-in in any one-second window.

    A window over the limit is shown message by message, with the dispatcher process whose claim sent it.
    """
    problems = []
    claimed_by = {r["message_sid"]: r["claimed_by"] for r in obs.ledger if r["message_sid"]}
    by_sender: dict[str, list[tuple[float, int, str]]] = {}
    for a in obs.arrivals:
        by_sender.setdefault(a["sender"], []).append((a["accepted_at"], a["segments"], a["sid"]))
    for sender, sent in sorted(by_sender.items()):
        sent.sort()
        worst: tuple[int, int, int] = (0, 0, 0)  # (segments, first index, last index)
        total = start = 0
        for end, (at, segments, _) in enumerate(sent):
            total += segments
            while at - sent[start][0] >= 1.0:
                total -= sent[start][1]
                start += 1
            worst = max(worst, (total, start, end))
        if worst[0] > limit:
            window = [(f"{t % 1000:.4f}", s, claimed_by.get(sid)) for t, s, sid in sent[worst[1]:worst[2] + 1]]
            problems.append(f"{sender} had {worst[0]} segments arrive within one second (limit {limit:g}); "
                            f"(arrival time mod 1000 s, segments, claimed by): {window}")
    return problems


def agreement(org: ChaosOrg, obs: Observed) -> list[str]:
    """4. Per run, the ledger, the run's counts, the usage rollup and the stand-in say the same."""
    problems = []
    arrivals: dict[str, list[dict[str, Any]]] = {}
    for a in obs.arrivals:
        arrivals.setdefault(a["sender"], []).append(a)
    statuses = {m["sid"]: m["status"] for texts in obs.texts.values() for m in texts}
    for campaign in org.campaigns:
        rows, run = obs.ledger_of(campaign.run_id), obs.runs[campaign.run_id]
        usage = obs.usage_runs.get(campaign.run_id)
        sent = [r for r in rows if r["state"] == "sent"]
        at_twilio = arrivals.get(campaign.sender, [])
        suppressed = [r for r in rows if r["state"] == "suppressed"]
        refused = [r for r in suppressed if r["error_code"] == UNSUBSCRIBED_ERROR]
        facts: dict[str, dict[str, object]] = {
            "messages": {"ledger": len(sent), "run": run["sent"], "usage": usage and usage["messages"],
                         "stand-in": len(at_twilio)},
            "segments": {"ledger": sum(r["segments"] for r in sent), "run": run["segments"],
                         "usage": usage and usage["segments"], "stand-in": sum(a["segments"] for a in at_twilio)},
            "delivered": {"ledger": sum(r["twilio_status"] == "delivered" for r in sent),
                          "usage": usage and usage["delivered"],
                          "stand-in": sum(statuses.get(a["sid"]) == "delivered" for a in at_twilio)},
            # Twilio's 21610 refusals are suppressed in the ledger and the run, failures in usage (not charged).
            "failed": {"ledger": sum(r["state"] == "failed" for r in rows) + len(refused),
                       "run": run["failed"] + len(refused), "usage": usage and usage["failed"]},
            "dropped": {"ledger": len(suppressed), "run": run["dropped"],
                        "usage": usage and usage["dropped"] + usage["opted_out_failures"]},
            "opted_out_failures": {"ledger": len(refused), "usage": usage and usage["opted_out_failures"]},
            "opt_outs": {"replies linked": obs.opt_out_replies.get(campaign.run_id, 0),
                         "usage": usage and usage["opt_outs"]},
        }
        for name, values in facts.items():
            if len(set(values.values())) != 1:
                problems.append(f"{campaign.sender} {name} disagree: {values}")
        in_ledger, at_standin = {r["message_sid"] for r in sent}, {a["sid"] for a in at_twilio}
        if in_ledger != at_standin:
            problems.append(f"{campaign.sender}: ledger SIDs differ from the stand-in's: only in the ledger "
                            f"{sorted(in_ledger - at_standin)[:5]}, only at the stand-in "
                            f"{sorted(at_standin - in_ledger)[:5]}")
    runs = {c: sum(u[c] for u in obs.usage_runs.values()) for c in USAGE_COUNTERS}
    if runs != obs.usage_daily:
        problems.append(f"usage_daily {obs.usage_daily} differs from the sum of usage_runs {runs}")
    return problems


def final_states(org: ChaosOrg, obs: Observed) -> list[str]:
    """5. Nothing is left half-done: runs and campaigns completed, every ledger row final, queues drained."""
    problems = []
    for campaign in org.campaigns:
        run, rows = obs.runs[campaign.run_id], obs.ledger_of(campaign.run_id)
        if run["state"] != "completed" or obs.campaign_states.get(campaign.campaign_id) != "completed":
            problems.append(f"{campaign.sender}: run {run['state']} ({run['state_reason']}), campaign "
                            f"{obs.campaign_states.get(campaign.campaign_id)}")
        states = Counter(r["state"] for r in rows)
        if set(states) - FINAL_LEDGER_STATES:
            problems.append(f"{campaign.sender}: ledger rows not final (or failed): {dict(states)}")
        if {r["recipient_id"] for r in rows} != obs.queued.get(campaign.run_id, set()) or run["targeted"] != len(rows):
            problems.append(f"{campaign.sender}: ledger has {len(rows)} rows for {run['targeted']} targeted, "
                            f"{len(obs.queued.get(campaign.run_id, set()))} queued")
        late = Counter(r["twilio_status"] for r in rows if r["state"] == "sent" and r["twilio_status"] != "delivered")
        if late:
            problems.append(f"{campaign.sender}: sent rows whose delivery never reached the ledger: {dict(late)}")
    if set(obs.webhooks) - {"done"}:
        problems.append(f"webhooks not processed: {obs.webhooks}")
    if obs.held_statuses or obs.unpublished_events:
        problems.append(f"{obs.held_statuses} statuses never matched a send-result; "
                        f"{obs.unpublished_events} outbox events never published")
    return problems


def sender_owners(obs: Observed) -> list[str]:
    """Which dispatcher process claimed each sender's recipients, in claim order: a line per sender, for the
    timeline. One sender's lane moves between processes at a rebalance; interleaving means two at once."""
    lines = []
    by_sender: dict[str, list[tuple[float, str]]] = {}
    for row in obs.ledger:
        by_sender.setdefault(row["sender"], []).append((row["claimed_at"], row["claimed_by"].rsplit(":", 1)[-1]))
    for sender, claims in sorted(by_sender.items()):
        claims.sort()
        spans: list[list[Any]] = []  # [pid, claims, first, last]
        for at, pid in claims:
            if spans and spans[-1][0] == pid:
                spans[-1][1] += 1
                spans[-1][3] = at
            else:
                spans.append([pid, 1, at, at])
        shown = ", ".join(f"{pid} x{n} {first % 1000:.2f}-{last % 1000:.2f}" for pid, n, first, last in spans)
        lines.append(f"{sender} claimed by (pid, claims, first-last mod 1000 s): {shown}")
    return lines


def survivors(services: list[Process]) -> list[str]:
    """6. No service process died or lost a worker: each still runs, and its log shows no crashed worker
    (``runtime.py`` stops a process whose worker raised) and no stop it was not asked for."""
    problems = []
    for process in services:
        text = process.log_path.read_text(errors="replace")
        code = process.proc.poll()
        fatal = [line for line in text.splitlines() if "worker.crashed" in line or "service.stopped" in line]
        if code is not None or fatal:
            tail = "\n    ".join(text.splitlines()[-15:])
            problems.append(f"{process.name} (pid {process.proc.pid}) exited with {code}; {fatal[:3]}; "
                            f"its log ends:\n    {tail}")
    return problems


def written_back(org: ChaosOrg, stops: list[Stop], jobs: list[dict[str, Any]],
                 panels: dict[str, dict[str, Any]]) -> list[str]:
    """7. Every STOP reached iMIS: the member's opt-out job is done and their panel row says SmsOptOut."""
    problems = []
    member_of = {m.phone: m.member_id for c in org.campaigns for m in c.members}
    for stop in stops:
        member = member_of[stop.phone]
        mine = [j for j in jobs if j["member_id"] == member and j["action"] == "opt_out"]
        if not mine or any(j["state"] != "done" for j in mine):
            problems.append(f"{stop.phone} (member {member}): the iMIS write-back is {mine or 'missing'}")
        elif panels.get(member, {}).get("SmsOptOut") is not True:
            problems.append(f"{stop.phone} (member {member}): iMIS's panel row is {panels.get(member)}")
    return problems
