"""The dispatcher's clock: the one place its pacing, slots and backoffs read the time and wait.

Production wires :class:`SystemClock` in ``main.py``; a test passes a clock of its own (one whose sleeps
end early, or that advances by itself) instead of patching ``asyncio.sleep`` or ``time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch: what pacing windows, ledger anchors and ``not_before`` slots are in."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Return when ``event`` is set or ``timeout`` seconds have passed, whichever is first."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)


class OffsetClock(SystemClock):
    """The system's time moved by the seconds written in a file (read again every 0.1 s), for end-to-end
    tests of quiet hours: the test moves the dispatcher's evening to the next morning by writing the file.
    Sleeps are real: only what the time reads is moved."""

    def __init__(self, offset_file: Path) -> None:
        self._file = offset_file
        self._offset = 0.0
        self._read_at = -1.0

    def time(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= 0.1:
            self._read_at = now
            with contextlib.suppress(OSError, ValueError):
                self._offset = float(self._file.read_text(encoding="utf-8").strip() or 0)
        return time.time() + self._offset
