"""The test harness's dispatcher clock: whatever hour the suite runs at, its dispatchers believe it is
daytime in every US time zone, and never later than a run's hold limit allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.dispatch import daytime_clock_offset


@pytest.mark.parametrize(("now", "offset_h"), [
    (datetime(2026, 12, 3, 11, 50, tzinfo=UTC), 7 + 10 / 60),  # 6:50 am Eastern: on to 19:00 UTC
    (datetime(2026, 12, 6, 18, 30, tzinfo=UTC), 0.5),  # Sunday 11:30 am in El Paso: Texas waits for noon
    (datetime(2026, 12, 3, 19, 0, tzinfo=UTC), 0),  # 9 am Hawaii: daytime everywhere, every day of the year
    (datetime(2026, 12, 3, 21, 59, tzinfo=UTC), 0),
    (datetime(2026, 12, 3, 22, 0, tzinfo=UTC), 21),  # two hours before Florida closes in summer: too few
    (datetime(2026, 12, 4, 1, 0, tzinfo=UTC), 18),  # 8 pm Eastern: Florida's window has closed
    (datetime(2026, 7, 1, 17, 59, tzinfo=UTC), 1 + 1 / 60),
])
def test_the_offset_moves_the_dispatchers_into_the_daytime_band(now: datetime, offset_h: float) -> None:
    offset = daytime_clock_offset(now)
    assert offset == pytest.approx(offset_h * 3600)
    moved = now + timedelta(seconds=offset)
    assert 19 <= moved.hour < 22  # and so at least two hours before the band ends at midnight
    assert 0 <= offset <= 21 * 3600  # ahead by hours less than the default 24 h hold limit
