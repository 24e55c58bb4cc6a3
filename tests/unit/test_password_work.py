"""Password hashing runs on its own bounded pool: past its queue a check is refused at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.api import auth
from services.api.password_work import PasswordWork, PasswordWorkBusy


async def test_checks_run_on_the_pools_own_threads_not_the_default_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = auth.check_password

    def recording(password_hash: str | None, password: str) -> auth.Checked:
        seen.append(threading.current_thread().name)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "check_password", recording)
    work = PasswordWork(workers=1, max_waiting=0)
    hashed = await work.hash("correct horse battery staple")
    assert (await work.check(hashed, "correct horse battery staple")).ok
    assert seen and all(name.startswith("password") for name in seen)


async def test_past_its_queue_a_check_is_refused_at_once_and_the_queue_drains() -> None:
    work = PasswordWork(workers=1, max_waiting=1)
    hashed = await work.hash("correct horse battery staple")
    first = asyncio.ensure_future(work.check(hashed, "guess one guess one"))
    second = asyncio.ensure_future(work.check(hashed, "guess two guess two"))
    await asyncio.sleep(0)  # both are now in flight or queued
    with pytest.raises(PasswordWorkBusy):
        await work.check(hashed, "correct horse battery staple")
    assert [r.ok for r in await asyncio.gather(first, second)] == [False, False]
    assert (await work.check(hashed, "correct horse battery staple")).ok
