"""How the opt-out service's workers sleep: until woken, or until their poll interval has passed."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_wakeup(wake: asyncio.Event, seconds: float) -> None:
    """Return when ``wake`` is set (and clear it) or after ``seconds``.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that races with its own
    timeout, and a worker that misses its cancellation keeps the process from shutting down.
    ``asyncio.timeout`` does not lose it.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()
