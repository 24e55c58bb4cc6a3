"""Cheap draws from a ``random.Random``: about twice as fast as ``choice``/``randrange``, which matters
when 100,000 members take a few million draws. Deterministic for a given stream, like the originals."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def below(rng: random.Random, start: int, stop: int | None = None) -> int:
    """An int in [start, stop), or in [0, start) when only one bound is given."""
    if stop is None:
        start, stop = 0, start
    return start + int(rng.random() * (stop - start))
