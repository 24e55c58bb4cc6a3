"""Twilio's date and money formats.

The 2010-04-01 API writes RFC 2822 GMT dates (``Tue, 03 Jun 2025 14:00:00 +0000``), which the SDK parses
with ``email.utils.parsedate``; the v1 APIs write ISO 8601 (``2025-06-03T14:00:00Z``). Prices are negative
decimal strings with five decimals (``"-0.00790"``).
"""

from __future__ import annotations

import time
from decimal import Decimal

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_cached: tuple[int, str] = (-1, "")


def rfc2822(epoch: float) -> str:
    """``email.utils.format_datetime`` of the UTC time, at a fraction of its cost (hot path: every create)."""
    global _cached
    second = int(epoch)
    cached = _cached
    if second == cached[0]:
        return cached[1]
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _cached = (second, text)
    return text


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def raw_dlr_done_date(epoch: float) -> str:
    """``RawDlrDoneDate``: YYMMDDhhmm (the carrier's zone is unknown; we use UTC)."""
    return time.strftime("%y%m%d%H%M", time.gmtime(epoch))


def price(amount: Decimal) -> str:
    """A charge as Twilio writes it: negative, five decimals; zero stays ``"0.00000"``."""
    return f"{-amount:.5f}" if amount else "0.00000"
