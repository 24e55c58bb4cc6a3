"""How a background worker polls its table: work, wait, repeat, and ride out a database outage.

    async def run(self) -> None:
        await poll_forever(lambda: drain(self.run_once, self._batch), stalled="alert_mailer.stalled",
                           poll_s=self._poll_s)

Each pass drains what is due (batch after batch while they come back full), then the worker sleeps for
``poll_s``, or less when ``wake`` is set (a route that just stored a row wakes its worker at once). When
a pass fails because PostgreSQL (or another dependency named in ``transient``) is away, the failure is
logged under ``stalled`` and the pass is tried again after a stall that doubles up to ``max_stall_s``
(10 s), or at once when ``wake`` is set meanwhile. Nothing is lost meanwhile: the rows stay in their
table. Any other exception ends the loop, and the worker with it.

``until_available`` is the same rule for one call inside a loop of its own (a consumer that must not
move past a record while PostgreSQL is away): it calls again after the same growing stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from libs.common.logging import get_logger
from libs.common.outages import is_outage

__all__ = ["drain", "poll_forever", "until_available"]

log = get_logger(__name__)

T = TypeVar("T")

_MAX_STALL_S = 10.0


async def poll_forever(
    work: Callable[[], Awaitable[object]],
    *,
    stalled: str,
    poll_s: float,
    wake: asyncio.Event | None = None,
    transient: Callable[[BaseException], bool] = is_outage,
    first_stall_s: float = 0.5,
    max_stall_s: float = _MAX_STALL_S,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run ``work`` then wait, until cancelled or, after a pass, ``stopping`` is set; see the module docstring."""
    stall = first_stall_s
    while stopping is None or not stopping.is_set():
        try:
            await work()
        except Exception as exc:
            if not transient(exc):
                raise
            if stopping is not None and stopping.is_set():
                return  # what the pass held is not committed: its next owner does it
            log.warning(stalled, extra={"error": f"{type(exc).__name__}: {exc}"})
            if wake is None:
                await asyncio.sleep(stall)
            else:
                await _wait_for_wakeup(wake, stall)
            stall = min(stall * 2, max_stall_s)
            continue
        stall = first_stall_s
        if wake is None:
            await asyncio.sleep(poll_s)
        else:
            await _wait_for_wakeup(wake, poll_s)


async def until_available(
    call: Callable[[], Awaitable[T]],
    *,
    stalled: str,
    stopping: asyncio.Event | None = None,
    first_stall_s: float = 0.5,
) -> T | None:
    """Return what ``call`` returns, calling it again while it fails with an outage (``is_outage``).

    Returns None, without calling again, once ``stopping`` is set. Any other exception propagates.
    """
    stall = first_stall_s
    while stopping is None or not stopping.is_set():
        try:
            return await call()
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning(stalled, extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        await asyncio.sleep(stall)
        stall = min(stall * 2, _MAX_STALL_S)
    return None


async def drain(batch: Callable[[], Awaitable[int]], size: int) -> None:
    """Call ``batch`` (which returns how many rows it took) until it takes fewer than ``size``."""
    while await batch() >= size:
        pass


async def _wait_for_wakeup(wake: asyncio.Event, seconds: float) -> None:
    """Return when ``wake`` is set (and clear it) or after ``seconds``.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that races with its own
    timeout, and a worker that misses its cancellation keeps the process from shutting down.
    ``asyncio.timeout`` does not lose it.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()
