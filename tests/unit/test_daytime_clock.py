"""The test harness's dispatcher clock: whatever hour the suite runs at, its dispatchers believe it is
daytime in every US time zone, and never later than a run's hold limit allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.dispatch import daytime_clock_offset


@pytest.mark.parametrize(("now", "offset_h"), [
    (datetime(2026, 12, 3, 11, 50, tzinfo=UTC), 8 + 10 / 60),  # 6:50 am Eastern: on to 20:00 UTC
    (datetime(2026, 12, 3, 18, 0, tzinfo=UTC), 0),  # 8 am Hawaii: already daytime everywhere
    (datetime(2026, 12, 3, 23, 59, tzinfo=UTC), 0),
    (datetime(2026, 12, 4, 0, 30, tzinfo=UTC), 0),  # 7:30 pm Eastern
    (datetime(2026, 12, 4, 1, 0, tzinfo=UTC), 19),  # 8 pm Eastern: Florida's window has closed
    (datetime(2026, 7, 1, 17, 59, tzinfo=UTC), 2 + 1 / 60),
])
def test_the_offset_moves_the_dispatchers_into_the_daytime_band(now: datetime, offset_h: float) -> None:
    offset = daytime_clock_offset(now)
    assert offset == pytest.approx(offset_h * 3600)
    moved = (now + timedelta(seconds=offset)).hour
    assert 18 <= moved or moved < 1
    assert 0 <= offset <= 19 * 3600  # ahead by hours less than the default 24 h hold limit
