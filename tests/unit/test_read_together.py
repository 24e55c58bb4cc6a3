"""ReadTogether: keys asked for while a read is in flight are read together by the next, each asker gets its
own key's answer, and a failed read fails only its own askers (libs/common/read_together.py)."""

from __future__ import annotations

import asyncio

import pytest

from libs.common.read_together import ReadTogether


class _Squares:
    def __init__(self, *, fail_when: int | None = None) -> None:
        self.reads: list[list[int]] = []
        self._fail_when = fail_when

    async def read_many(self, keys: list[int]) -> list[int]:
        self.reads.append(keys)
        await asyncio.sleep(0.01)  # a round trip, during which more askers arrive
        if self._fail_when in keys:
            raise ConnectionRefusedError("connection refused")
        return [key * key for key in keys]


async def test_askers_meanwhile_are_read_together_and_each_gets_its_own_answer() -> None:
    squares = _Squares()
    together = ReadTogether(squares.read_many, batch_max=100)

    answers = await asyncio.gather(*(together.get(n) for n in range(50)))

    assert answers == [n * n for n in range(50)]
    assert squares.reads == [list(range(50))]  # asked in the same turn of the loop: one read


async def test_a_read_holds_at_most_batch_max_keys() -> None:
    squares = _Squares()
    together = ReadTogether(squares.read_many, batch_max=20)

    answers = await asyncio.gather(*(together.get(n) for n in range(50)))

    assert answers == [n * n for n in range(50)]
    assert [len(keys) for keys in squares.reads] == [20, 20, 10]


async def test_askers_while_a_read_is_in_flight_wait_for_the_next_one_together() -> None:
    squares = _Squares()
    together = ReadTogether(squares.read_many, batch_max=100)
    first = asyncio.ensure_future(together.get(0))
    await asyncio.sleep(0)  # the first read is in flight
    later = [asyncio.ensure_future(together.get(n)) for n in range(1, 10)]

    assert [await first, *await asyncio.gather(*later)] == [n * n for n in range(10)]
    assert squares.reads == [[0], list(range(1, 10))]


async def test_a_failed_read_fails_its_own_askers_and_the_next_are_still_read() -> None:
    squares = _Squares(fail_when=0)
    together = ReadTogether(squares.read_many, batch_max=100)
    first = asyncio.ensure_future(together.get(0))
    await asyncio.sleep(0)  # the first read is in flight
    later = [asyncio.ensure_future(together.get(n)) for n in (1, 2, 3)]

    with pytest.raises(ConnectionRefusedError):
        await first
    assert await asyncio.gather(*later) == [1, 4, 9]

    assert await together.get(5) == 25  # and asking again afterwards starts a new read
