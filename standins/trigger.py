"""When a fault plan fires: after ``skip`` matching events, on a ``share`` of them, at most ``count`` times.

Shared by both stand-ins' fault plans. A share fires deterministically (an accumulator, not a random
draw): share 0.25 fires on every fourth event, so tests can assert exact counts.
"""

from __future__ import annotations

from dataclasses import dataclass

_EPSILON = 1e-9


@dataclass(slots=True)
class Trigger:
    """``fire()`` is called once per matching event and says whether the fault applies to it."""

    skip: int = 0
    count: int | None = None
    share: float | None = None
    fired: int = 0
    _accumulated: float = 0.0

    def __post_init__(self) -> None:
        if self.count is None and self.share is None:
            raise ValueError("a fault plan needs a count, a share, or both")
        if self.share is not None and not 0.0 < self.share <= 1.0:
            raise ValueError("share must be in (0, 1]")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.skip < 0:
            raise ValueError("skip must not be negative")

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def fire(self) -> bool:
        if self.exhausted:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        self._accumulated += 1.0 if self.share is None else self.share
        if self._accumulated < 1.0 - _EPSILON:
            return False
        self._accumulated -= 1.0
        self.fired += 1
        return True
