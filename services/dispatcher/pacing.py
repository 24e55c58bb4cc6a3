"""Per-sender pacing in segments over a sliding one-second window. Pure: ``now`` is passed in.

Twilio counts a sender's throughput in segments per second where it *accepts* messages, a moment we
cannot see. We only know that acceptance happened after our request started and before its response
came back. So each sent message is recorded at its **response** time (the latest it can have been
accepted), and a new message may **start** only when the segments recorded in the second before that
start, plus its own, fit the limit. Then in any sliding second of Twilio's acceptance times a sender
never exceeds its limit, whatever the latency; the cost is one round trip per window, a fraction of a
percent of the rate on loopback or a nearby region.

Messages of a sender need not leave in order (they go to different members), so ``choose`` packs the
window: when the next message does not fit the room left, a smaller one from a little further down the
queue may go first. With 1-, 2- and 3-segment messages mixed, strict order would waste up to a third of
the rate; the head is passed over only a few times, so nothing waits for long.

A message with more segments than the limit (a 4-segment text on a 3/s sender) is allowed alone in an
empty window, because it could never be sent otherwise; it then fills the window for its own second.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 1.0


@dataclass
class SlidingWindow:
    limit: float  # segments per second
    _sent: deque[tuple[float, int]] = field(default_factory=deque)  # (anchor time, segments), in order

    def earliest_start(self, now: float, segments: int) -> float:
        """The earliest time >= now at which a message of ``segments`` may start."""
        self._forget_expired(now)
        used = sum(s for _, s in self._sent)
        if used + segments <= self.limit or not self._sent:
            return now
        # Walk forward through the window until enough segments have aged out.
        freed = 0
        for anchor, seg in self._sent:
            freed += seg
            if used - freed + segments <= self.limit:
                return max(now, anchor + WINDOW_S)
        return max(now, self._sent[-1][0] + WINDOW_S)

    def room(self, now: float) -> float:
        """Segments that may start now; the whole limit when the window is empty."""
        self._forget_expired(now)
        return self.limit - sum(s for _, s in self._sent)

    def is_empty(self, now: float) -> bool:
        self._forget_expired(now)
        return not self._sent

    def record(self, anchor: float, segments: int) -> None:
        """Record a message Twilio may have accepted as late as ``anchor``."""
        if self._sent and anchor < self._sent[-1][0]:
            # Anchors arrive in order for one sender (one request in flight); a seed from the ledger may
            # not be, so keep the deque sorted.
            items = sorted([*self._sent, (anchor, segments)])
            self._sent = deque(items)
        else:
            self._sent.append((anchor, segments))

    def _forget_expired(self, now: float) -> None:
        # Compared as anchor + WINDOW_S <= now, the very expression earliest_start returns, so that
        # float rounding can never leave a message in the window at the moment it should leave it.
        while self._sent and self._sent[0][0] + WINDOW_S <= now:
            self._sent.popleft()


def choose(pending: list[int], room: float, *, empty: bool, head_passed_over: int,
           lookahead: int = 16, max_pass_over: int = 3) -> int | None:
    """Index in ``pending`` (segments of queued messages, oldest first) of the one to start now, or None.

    The head goes if it fits (or the window is empty); otherwise the largest message that fits among
    the next ``lookahead``, unless the head has already been passed over ``max_pass_over`` times.
    """
    if not pending:
        return None
    if pending[0] <= room or empty:
        return 0
    if head_passed_over >= max_pass_over:
        return None
    best = None
    for index in range(1, min(lookahead, len(pending))):
        if pending[index] <= room and (best is None or pending[index] > pending[best]):
            best = index
            if pending[index] == room:
                break
    return best


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
