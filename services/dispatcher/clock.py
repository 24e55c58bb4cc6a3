"""The dispatcher's clock: the one place its pacing, slots and backoffs read the time and wait.

Production wires :class:`SystemClock` in ``main.py``; a test passes a clock of its own (one whose sleeps
end early, or that advances by itself) instead of patching ``asyncio.sleep`` or ``time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
