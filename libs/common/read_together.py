"""Reads asked for while one is in flight, answered together by the next.

A hot path that reads one row per request (a dispatcher's cap counts, a short link's target) makes one
round trip per request, and under a burst the requests queue for the pool's connections. A
:class:`ReadTogether` answers the first asker at once and everyone who asks meanwhile with one read of
all their keys when that read is back: one statement per round trip, however many ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ReadTogether(Generic[K, V]):
    """``await get(key)`` answered by ``read_many(keys)``, which returns one answer per key, in order, for
    at most ``batch_max`` keys at a time. A failed read fails each of its askers as their own read would
    have; the askers after them are read on."""

    def __init__(self, read_many: Callable[[list[K]], Awaitable[Sequence[V]]], *, batch_max: int) -> None:
        self._read_many = read_many
        self._batch_max = batch_max
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, answer))
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_while_asked())
        return await answer

    async def _read_while_asked(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self._batch_max], self._waiting[self._batch_max:]
            try:
                found = await self._read_many([key for key, _ in batch])
            except asyncio.CancelledError:
                for _, answer in batch + self._waiting:
                    answer.cancel()
                raise
            except Exception as error:  # noqa: BLE001 - handed to each asker of this batch
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for (_, answer), value in zip(batch, found, strict=True):
                if not answer.done():
                    answer.set_result(value)
