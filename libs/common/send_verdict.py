"""One recipient's verdict: send now, hold until the window opens, outside the window, or frequency-capped. Pure.

The dispatcher asks it before each Twilio call (``services/dispatcher/send_rules.py``, with the ledger's
counts) and the send planner for each recipient before launch (:mod:`libs.common.send_plan`), so both say
the same. Quiet hours are :mod:`libs.common.quiet_hours`; the frequency caps are:

- the state's texts per 24 h on one subject (one campaign, all its runs), for every campaign;
- the organisation's marketing cap (texts in a number of days, all campaigns), unless the campaign is
  transactional (a storm closure). Transactional texts still keep quiet hours and opt-outs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from libs.common.quiet_hours import Hours, OrgWindow, is_open, next_open, resolve_location, state_text_limit

__all__ = ["SEND", "RunRules", "Verdict", "decide", "marketing_cap_of", "org_window_of"]


@dataclass(frozen=True, slots=True)
class RunRules:
    org_time_zone: str
    window: OrgWindow
    marketing_cap: tuple[int, int] | None  # (texts, days)
    transactional: bool
    campaign_id: uuid.UUID
    hold_ends: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["send", "hold", "outside_window", "frequency_capped"]
    until: datetime | None = None  # a hold's release
    reason: str | None = None


SEND = Verdict("send")


class _Row(Protocol):
    """A database row or a dict with the organisation's columns."""

    def __getitem__(self, key: str, /) -> Any: ...


def org_window_of(row: _Row) -> OrgWindow:
    """The organisation's window from its columns (0045: ``send_window_*_min``, ``send_days``, ``holidays``)."""
    return OrgWindow(Hours(row["send_window_start_min"], row["send_window_end_min"]), frozenset(row["send_days"]),
                     frozenset(row["holidays"] or ()))


def marketing_cap_of(row: _Row) -> tuple[int, int] | None:
    """The organisation's marketing cap (texts, days) from its columns (0045), None without one."""
    texts, days = row["marketing_cap_texts"], row["marketing_cap_days"]
    return (texts, days) if texts is not None and days is not None else None


def decide(rules: RunRules, now: datetime, *, e164: str, address_state: str | None, address_time_zone: str | None,
           marketing_sent: int, subject_sent: int) -> Verdict:
    """The verdict for one recipient at ``now``, given the ledger's counts. Pure."""
    location = resolve_location(e164, org_time_zone=rules.org_time_zone, address_state=address_state,
                                address_time_zone=address_time_zone)
    if not is_open(location, now, rules.window):
        opens = next_open(location, now, rules.window)
        if opens is None or opens > rules.hold_ends:
            return Verdict("outside_window", reason="the member's local window does not open before the "
                                                    "campaign's hold limit")
        return Verdict("hold", until=opens)
    limit = state_text_limit(location)
    if limit is not None and subject_sent >= limit:
        states = ", ".join(sorted(location.states))
        return Verdict("frequency_capped", reason=f"{subject_sent} texts on this campaign in 24 h ({states} "
                                                  f"allows {limit})")
    if rules.marketing_cap is not None and not rules.transactional and marketing_sent >= rules.marketing_cap[0]:
        texts, days = rules.marketing_cap
        return Verdict("frequency_capped", reason=f"the organisation's cap of {texts} marketing texts in {days} days")
    return SEND
