"""When a figure or a run's state calls for an alert, and which one. Pure.

Other services record a run's state with a reason (:mod:`libs.common.run_reasons`): a stable code and
typed facts. The code, and the Twilio error code it carries, decide the alert; the words are for people.

    >>> from libs.common import run_reasons
    >>> classify_run("paused", run_reasons.twilio_refused(30032, "toll-free number not verified"))
    <AlertKind.TOLL_FREE_RESTRICTED: 'toll_free_restricted'>
    >>> classify_run("paused", None) is None          # a pause by staff needs no alert
    True
    >>> classify_run("completed", run_reasons.no_recipients(12), sent=0)
    <AlertKind.NOTHING_SENT: 'nothing_sent'>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from libs.common.alert_templates import AlertKind
from libs.common.run_reasons import RunReason

# States the watcher looks at (campaign_runs.state), and completed runs that sent nothing; keep in step
# with the partial index campaign_runs_alertable (0013) and the query runs-to-alert.
ALERTABLE_STATES: Final = ("paused", "refused", "over_limit", "missed", "failed")
# Twilio errors that mean the account itself is refused: wrong or revoked credentials, suspended account.
TWILIO_AUTH_CODES: Final = frozenset({20003, 20005, 20008, 30002})
TOLL_FREE_CODES: Final = frozenset({30032})


def classify_run(state: str, reason: RunReason | None, *, sent: int = 0) -> AlertKind | None:
    """The alert a run in ``state`` with ``reason`` needs, or None (a staff pause, a state we ignore).

    A completed run needs one only when it sent nothing (``sent`` messages accepted by Twilio).
    """
    if state == "completed":
        return AlertKind.NOTHING_SENT if sent == 0 else None
    code = reason.code if reason is not None else ""
    twilio = reason.error_code if reason is not None else None
    if state == "over_limit" or code in ("segment_limit", "account_max_segments", "over_limit"):
        return AlertKind.SEGMENT_LIMIT
    if state == "missed":
        return AlertKind.RUN_MISSED
    if code in ("sender_unverified", "toll_free_cap") or twilio in TOLL_FREE_CODES:
        return AlertKind.TOLL_FREE_RESTRICTED
    if code == "twilio_auth" or twilio in TWILIO_AUTH_CODES:
        return AlertKind.TWILIO_AUTH
    if code == "failure_threshold":
        return AlertKind.FAILURE_THRESHOLD
    if twilio is not None:
        return AlertKind.TWILIO_REFUSED
    if code.startswith("iqa"):
        return AlertKind.IQA_FAILED
    if code.startswith("imis"):
        return AlertKind.IMIS_UNREACHABLE
    if state in ("failed", "refused"):
        return AlertKind.RUN_FAILED
    return None


def run_dedupe_key(run_id: object, kind: AlertKind) -> str:
    """The same condition for the same run alerts once (then as reminders, by the kind's quiet period)."""
    return f"run:{run_id}:{kind.value}"


def usage_threshold(used: int, allowance: int | None) -> AlertKind | None:
    """The highest allowance threshold ``used`` segments have reached this month, if any."""
    if not allowance or allowance <= 0:
        return None
    if used >= allowance:
        return AlertKind.USAGE_100
    if used * 5 >= allowance * 4:  # 80 %, in integers
        return AlertKind.USAGE_80
    return None


@dataclass(frozen=True, slots=True)
class OptedOutRule:
    """Alert when at least ``min_count`` failures of a run went to opted-out numbers and they are at
    least ``min_share`` of its failures: a handful is noise, a large share means a stale audience."""

    min_count: int = 10
    min_share: float = 0.25

    def fires(self, opted_out_failures: int, failed: int) -> bool:
        if opted_out_failures < self.min_count or failed <= 0:
            return False
        return opted_out_failures >= self.min_share * failed


@dataclass(frozen=True, slots=True)
class FailingSignaturesRule:
    """Alert when at least ``threshold`` webhooks naming an organisation's account were refused for a bad
    signature within ``window_s``: a forged request now and then is noise; a steady stream means Twilio's
    own webhooks no longer validate (the webhook URL or auth token changed on one side only)."""

    threshold: int = 20
    window_s: float = 600.0

    @property
    def window_minutes(self) -> int:
        return int(self.window_s // 60)
