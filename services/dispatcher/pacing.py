"""Per-sender pacing in segments over a sliding one-second window. Pure: ``now`` is passed in.

Twilio counts a sender's throughput in segments per second where it *accepts* messages, a moment we
cannot see. We only know that acceptance happened after our request started and before its response
came back. So each sent message is recorded at its **response** time (the latest it can have been
accepted), and a new message may **start** only when the segments recorded in the second before that
start, plus its own, fit the limit. Then in any sliding second of Twilio's acceptance times a sender
never exceeds its limit, whatever the latency; the cost is one round trip per window, a fraction of a
percent of the rate on loopback or a nearby region.

Messages of a sender need not leave in order (they go to different members), so ``choose`` packs the
window from a little way down the queue. With 1-, 2- and 3-segment messages mixed, strict order would
waste up to a third of the rate; a message that has waited long enough goes next, so nothing waits long.

A message with more segments than the limit (a 4-segment text on a 3/s sender) is allowed alone in an
empty window, because it could never be sent otherwise; it then fills the window for its own second.

A fast sender (150 segments/s) keeps several requests in flight. A message in flight counts in the window
from its start until its response is recorded: whatever second of acceptance times we look at, the last
message to start in it saw every other message of that second either recorded or in flight, so the limit
still holds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 1.0


@dataclass
class SlidingWindow:
    """The segments a sender may have had accepted in the last second. Asking about a time (``room``,
    ``earliest_start`` ...) never changes it: the lane asks about a slot ahead of time and may then not
    use it (a redelivered recipient turns out to be sent already), so only ``record`` forgets."""

    limit: float  # segments per second
    _sent: deque[tuple[float, int]] = field(default_factory=deque)  # (anchor time, segments), in order
    in_flight: int = 0  # segments of messages started and not yet recorded or released

    def _live(self, at: float) -> list[tuple[float, int]]:
        # Compared as anchor + WINDOW_S <= at, the very expression earliest_start returns, so that float
        # rounding can never leave a message in the window at the moment it should leave it.
        return [(anchor, seg) for anchor, seg in self._sent if anchor + WINDOW_S > at]

    def earliest_start(self, now: float, segments: int) -> float:
        """The earliest time >= now at which a message of ``segments`` may start; ``math.inf`` when that
        waits for a message in flight (its response, then a second, frees it)."""
        live = self._live(now)
        used = sum(s for _, s in live) + self.in_flight
        if used + segments <= self.limit or (not live and not self.in_flight):
            return now
        # Walk forward through the window until enough segments have aged out.
        freed = 0
        for anchor, seg in live:
            freed += seg
            if used - freed + segments <= self.limit:
                return max(now, anchor + WINDOW_S)
        if self.in_flight:
            return math.inf
        return max(now, live[-1][0] + WINDOW_S)

    def room(self, at: float) -> float:
        """Segments that may start at ``at``; the whole limit when the window is empty."""
        return self.limit - sum(s for _, s in self._live(at)) - self.in_flight

    def is_empty(self, at: float) -> bool:
        return not self.in_flight and not self._live(at)

    def start(self, segments: int) -> None:
        """A message of ``segments`` is starting: it counts until ``release``."""
        self.in_flight += segments

    def release(self, segments: int) -> None:
        """A started message ended (``record`` what it may have used first)."""
        self.in_flight -= segments

    def holds(self, at: float, segments: int) -> bool:
        """Whether a message of exactly ``segments`` is still in the window at ``at``."""
        return any(s == segments for _, s in self._live(at))

    def record(self, anchor: float, segments: int) -> None:
        """Record a message Twilio may have accepted as late as ``anchor``."""
        if self._sent and anchor < self._sent[-1][0]:
            # Anchors arrive in order for one sender (one request in flight); a seed from the ledger may
            # not be, so keep the deque sorted.
            self._sent = deque(sorted([*self._sent, (anchor, segments)]))
        else:
            self._sent.append((anchor, segments))
        # Nothing asks about a time before the latest anchor minus a second: older entries can go.
        while self._sent and self._sent[0][0] + 2 * WINDOW_S <= self._sent[-1][0]:
            self._sent.popleft()


LOOKAHEAD = 512  # enough to see the mix of sizes a sender has queued
MAX_HEAD_WAIT_S = 60.0  # 1s are held back to pair with 2s; a short limit would spend them


@dataclass(frozen=True)
class Choice:
    index: int | None  # start pending[index] now; or, when None,
    wait_for: int = 0  # wait until this many segments fit


def choose(pending: list[int], room: float, *, empty: bool, window_holds_a_two: bool, head_waited_s: float,
           lookahead: int = LOOKAHEAD, max_head_wait_s: float = MAX_HEAD_WAIT_S) -> Choice:
    """Which of ``pending`` (segments of queued messages, oldest first) starts now, or what to wait for.

    The largest message that fits the room left goes first, so 3-segment texts take empty windows and 2s
    the room a 2 leaves. Two 2-segment texts never share a second under a limit of 3, so a 2 reaches the
    limit only beside a 1: while 1s are no more plentiful than 2s, a 1 is spent only to fill the room
    beside a 2, and otherwise the lane waits for room for a 2. (Spending 1s three to a second leaves the
    2s alone at 2 segments/s at the end; and once 1s go singly as room frees, their staggered send times
    keep freeing room one segment at a time.) The oldest message, once passed over for
    ``max_head_wait_s`` (``head_waited_s``), goes next whatever its size.
    """
    if not pending:
        return Choice(None, 0)
    if head_waited_s >= max_head_wait_s:
        return Choice(0) if pending[0] <= room or empty else Choice(None, pending[0])
    view = pending[:lookahead]
    best = None
    for index, size in enumerate(view):
        if size <= room and (best is None or size > view[best]):
            best = index
            if size >= room:
                break
    if best is None:
        return Choice(0) if empty else Choice(None, min(view))  # larger than the limit: alone when empty
    if view[best] == 1 and not window_holds_a_two:
        twos = view.count(2)
        if twos and twos >= view.count(1):
            return Choice(None, 2)
    return Choice(best)


def max_in_any_window(times_and_segments: list[tuple[float, int]], window: float = WINDOW_S) -> int:
    """The most segments in any half-open window [t, t + window) over the given events (for checks)."""
    events = sorted(times_and_segments)
    best = total = start = 0
    for end in range(len(events)):
        total += events[end][1]
        while events[end][0] - events[start][0] >= window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best
