"""How far a sending run has got, how fast it goes, and when it should finish. Pure; ``now`` is passed in.

    >>> from datetime import UTC, datetime, timedelta
    >>> now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    >>> p = measure(total=1000, done=400, recent=180, window_s=60, started_at=now - timedelta(minutes=5), now=now)
    >>> p.percent, p.per_minute, p.expected_finish.isoformat()
    (40, 180, '2026-03-10T14:03:20+00:00')

The rate is what was sent in the last ``window_s`` seconds (a sender is paced at 3 segments a second,
so a minute smooths the steps); a run that started less than a window ago is measured since it started.
It is never shown above the sender's pace (``segments_per_second``: a message is at least one
segment): a send on the window's edge, or a clock step, must not read 181 a minute against 180.
No expected finish is given without a rate: a paused or stalled run does not pretend to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    done: int
    percent: int  # 0-100, rounded down: 100 only when everything is done
    per_minute: int  # messages finished per minute, recently
    expected_finish: datetime | None


def measure(
    *, total: int, done: int, recent: int, window_s: float, started_at: datetime | None, now: datetime,
    segments_per_second: float | None = None,
) -> Progress:
    done = max(0, min(done, total)) if total > 0 else max(done, 0)
    percent = (100 * done // total) if total > 0 else 0
    window = window_s
    if started_at is not None:
        window = min(window_s, max((now - started_at).total_seconds(), 1.0))
    per_second = recent / window if window > 0 else 0.0
    if segments_per_second is not None:
        per_second = min(per_second, segments_per_second)
    finish = None
    if per_second > 0 and total > done:
        finish = now + timedelta(seconds=(total - done) / per_second)
    return Progress(total=total, done=done, percent=percent, per_minute=round(per_second * 60),
                    expected_finish=finish)
