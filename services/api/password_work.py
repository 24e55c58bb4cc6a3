"""Password hashing on a thread pool of its own, with a bounded queue.

argon2 is meant to be slow (tens of milliseconds and 64 MiB a hash). On the default executor a flood of
sign-ins queued ahead of CSV parsing and schedule expansion and slowed everything; here at most
``WORKERS`` hashes run at once and at most ``MAX_WAITING`` wait, and past that a sign-in is refused
at once (:class:`PasswordWorkBusy`, answered 503) instead of queuing without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

from libs.common.errors import RetryableError
from services.api import auth

T = TypeVar("T")

WORKERS: Final = 2
MAX_WAITING: Final = 32


class PasswordWorkBusy(RetryableError):
    """More password checks are queued than the pool takes; the caller should try again shortly."""


class PasswordWork:
    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password")
        self._capacity = workers + max_waiting
        self._in_flight = 0
        self.performed = 0  # hashes computed, for tests and logs

    async def check(self, password_hash: str | None, password: str) -> auth.Checked:
        return await self._run(auth.check_password, password_hash, password)

    async def hash(self, password: str) -> str:
        return await self._run(auth.hash_password, password)

    async def _run(self, work: Callable[[str | None, str], T] | Callable[[str], T], *args: str | None) -> T:
        if self._in_flight >= self._capacity:
            raise PasswordWorkBusy("sign_in_busy", "too many sign-ins are being checked right now; try again shortly")
        self._in_flight += 1
        self.performed += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)  # type: ignore[arg-type]
        finally:
            self._in_flight -= 1


PASSWORDS: Final = PasswordWork()
